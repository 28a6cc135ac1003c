namespace Portcullis.SignIn;

/// <summary>The pages' one stylesheet, served from the binary (<c>style-src 'self'</c>: nothing inline).</summary>
internal static class PageStyle
{
    /// <summary>A portcullis: a gate of bars.</summary>
    public const string Icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="2" fill="#1d4ed8"/><path d="M4 3v10M8 3v10M12 3v10M2 6h12M2 10h12" stroke="#fff" stroke-width="1.5"/></svg>
        """;

    public const string Css = """
        :root { color-scheme: light dark; --accent: #1d4ed8; --error: #b91c1c; }
        * { box-sizing: border-box; }
        body { font: 16px/1.5 system-ui, sans-serif; margin: 0; display: flex; justify-content: center; }
        main { width: 100%; max-width: 28rem; padding: 2rem 1rem; }
        main.wide { max-width: 48rem; }
        h1 { font-size: 1.5rem; margin: 0 0 1rem; }
        h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
        label { display: block; font-weight: 600; margin-top: 1rem; }
        input[type=text], input[type=password], input[type=email] { width: 100%; padding: .5rem; font: inherit; margin-top: .25rem; border: 1px solid #6b7280; border-radius: .25rem; }
        button { font: inherit; padding: .5rem 1rem; margin-top: 1rem; border-radius: .25rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
        button.secondary { background: transparent; color: inherit; border-color: #6b7280; }
        button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
        .error { color: var(--error); border-left: 4px solid var(--error); padding-left: .75rem; }
        .note { color: #4b5563; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #d1d5db; }
        form.inline { display: inline; }
        form.inline button { margin-top: 0; }
        ul.scopes { padding-left: 1.25rem; }
        svg.qr { display: block; width: 14rem; height: 14rem; margin: 1rem 0; }
        code.key, ul.codes code { font: 1.1rem/1.6 ui-monospace, monospace; letter-spacing: .05em; }
        ul.codes { columns: 2; padding-left: 1.25rem; }
        """;
}
