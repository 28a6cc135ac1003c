using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A headless Debian chromium driven by Playwright, trusting exactly the given test certificates, that records
/// everything a page should never produce: console errors, uncaught page errors, failed requests and Content
/// Security Policy violations. A test ends with <see cref="AssertNoProblems"/>.
/// <para>
/// The browser is the distribution's (<see cref="ExecutablePath"/>; scripts/test.sh installs it): Playwright's own
/// browser download needs the network and is never used.
/// </para>
/// </summary>
public sealed partial class Browser : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>How long an action or navigation may take on a busy two-core machine before the test fails.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static readonly string[] Arguments =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run",
    ];

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;
    private readonly ConcurrentQueue<BrowserProblem> _problems = new();
    private readonly List<IBrowserContext> _contexts = [];
    private readonly ConcurrentDictionary<string, bool> _expectedErrorPages = new(StringComparer.Ordinal);

    private Browser(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        _browser = browser;
    }

    /// <summary>
    /// Launches chromium trusting <paramref name="trusted"/> (pinned by the SHA-256 of each certificate's public key,
    /// so any other certificate, or a valid one for another key, still fails) and opens the first context.
    /// </summary>
    public static async Task<Browser> LaunchAsync(params X509Certificate2[] trusted)
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"{ExecutablePath} is missing: install the Debian 'chromium' package (scripts/test.sh does, as root).");
        }

        if (trusted.Length == 0)
        {
            throw new ArgumentException("Name the certificates the browser trusts (the test servers').", nameof(trusted));
        }

        // Chromium honours the SPKI pin list only with --user-data-dir, which Playwright always passes (a temporary
        // profile). The pin replaces --ignore-certificate-errors, which would accept any certificate at all.
        var pins = "--ignore-certificate-errors-spki-list=" + string.Join(',', trusted.Select(SpkiPin));
        // Expect(...) waits 5 s by default, too little for a sign-in (a password hash) on a busy two-core machine.
        Assertions.SetDefaultExpectTimeout((float)Timeout.TotalMilliseconds);
        var playwright = await Playwright.CreateAsync();
        IBrowser browser;
        try
        {
            browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                Args = [.. Arguments, pins],
                Timeout = (float)Timeout.TotalMilliseconds,
            });
        }
        catch
        {
            playwright.Dispose();
            throw;
        }

        var launched = new Browser(playwright, browser);
        try
        {
            launched.Context = await launched.NewContextAsync();
            return launched;
        }
        catch
        {
            await launched.DisposeAsync();
            throw;
        }
    }

    /// <summary>The base64 SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 7469 section 2.4), as chromium pins it.</summary>
    public static string SpkiPin(X509Certificate2 certificate) =>
        Convert.ToBase64String(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));

    /// <summary>The first context (one cookie jar): what a single user's browser would be.</summary>
    public IBrowserContext Context { get; private set; } = null!;

    /// <summary>Everything recorded so far, in every context, in the order it happened.</summary>
    public IReadOnlyList<BrowserProblem> Problems => [.. _problems];

    public IReadOnlyList<BrowserProblem> CspViolations => [.. _problems.Where(p => p.Kind == BrowserProblemKind.CspViolation)];

    /// <summary>A page in the first context.</summary>
    public Task<IPage> NewPageAsync() => Context.NewPageAsync();

    /// <summary>
    /// Another context (a second user, or a browser with no cookies), recorded like the first.
    /// <paramref name="javaScriptEnabled"/> false is a browser with scripts off (the pages must work without them).
    /// </summary>
    /// <remarks>
    /// No context bypasses the pages' Content-Security-Policy: axe-core (Deque.AxeCore.Playwright) is evaluated
    /// through the DevTools protocol, which the policy does not govern, so the accessibility checks run on the pages
    /// exactly as served, and a violation the checker caused would be recorded like any other.
    /// </remarks>
    public async Task<IBrowserContext> NewContextAsync(bool javaScriptEnabled = true)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions
        {
            // Pinned in the launch arguments; Playwright's own switch would accept every certificate.
            IgnoreHTTPSErrors = false,
            Locale = "en-US",
            JavaScriptEnabled = javaScriptEnabled,
        });
        context.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        context.SetDefaultNavigationTimeout((float)Timeout.TotalMilliseconds);
        context.Console += (_, message) =>
        {
            // Chromium reports a CSP violation as a console error from the page ("Refused to ... because it violates
            // the following Content Security Policy directive ..."; "[Report Only]" ones as well).
            if (message.Text.Contains("Content Security Policy", StringComparison.Ordinal))
            {
                Record(BrowserProblemKind.CspViolation, message.Text, message.Location);
            }
            else if (message.Type == "error" && !IsExpectedErrorPage(message.Text, message.Location))
            {
                Record(BrowserProblemKind.ConsoleError, message.Text, message.Location);
            }
        };
        context.WebError += (_, error) => Record(BrowserProblemKind.PageError, error.Error, error.Page?.Url);
        context.RequestFailed += (_, request) =>
            Record(BrowserProblemKind.FailedRequest, $"{request.Method} {request.Failure}", request.Url);
        lock (_contexts)
        {
            _contexts.Add(context);
        }

        return context;
    }

    /// <summary>
    /// Declares, before it is loaded, that the page at <paramref name="url"/> is served with <paramref name="status"/>
    /// on purpose (a form shown again with its error message is a 400, as the raw-HTTP tests require). Chromium logs
    /// every such document as a console error ("Failed to load resource: the server responded with a status of
    /// 400"); for exactly this URL and status that line is not a problem. Any other status, URL or message still is.
    /// </summary>
    public void ExpectErrorPage(string url, int status) => _expectedErrorPages[$"{status} {url}"] = true;

    private bool IsExpectedErrorPage(string text, string? location) =>
        location is not null
        && FailedToLoad().Match(text) is { Success: true } failed
        && _expectedErrorPages.Keys.Any(key => key == $"{failed.Groups[1].Value} {LocationUrl(location)}");

    /// <summary>A console location reads <c>URL:LINE:COLUMN</c>.</summary>
    private static string LocationUrl(string location) =>
        LocationSuffix().Replace(location, "");

    [GeneratedRegex(@"^Failed to load resource: the server responded with a status of (\d{3}) ")]
    private static partial Regex FailedToLoad();

    [GeneratedRegex(@":\d+:\d+$")]
    private static partial Regex LocationSuffix();

    /// <summary>Fails the test listing every problem recorded, if any.</summary>
    public void AssertNoProblems()
    {
        var problems = Problems;
        Assert.True(problems.Count == 0, "The browser recorded:\n" + string.Join('\n', problems));
    }

    private void Record(BrowserProblemKind kind, string text, string? where) => _problems.Enqueue(new BrowserProblem(kind, text, where));

    public async ValueTask DisposeAsync()
    {
        try
        {
            IBrowserContext[] contexts;
            lock (_contexts)
            {
                contexts = [.. _contexts];
            }

            foreach (var context in contexts)
            {
                await context.CloseAsync();
            }

            // Closing the browser ends the chromium process tree; Dispose then stops Playwright's driver process.
            await _browser.CloseAsync();
        }
        finally
        {
            _playwright.Dispose();
        }
    }
}

/// <summary>
/// Browser test classes share this collection, so they run one after another: a chromium is a few hundred
/// megabytes and several processes, and the suite's other classes run beside it on two cores.
/// </summary>
[CollectionDefinition(Name)]
public sealed class BrowserTests
{
    public const string Name = "Browser";
}

public enum BrowserProblemKind
{
    ConsoleError,
    PageError,
    FailedRequest,
    CspViolation,
}

/// <summary>One thing a page should not have done; <see cref="Where"/> is the URL (and line) when known.</summary>
public sealed record BrowserProblem(BrowserProblemKind Kind, string Text, string? Where)
{
    public override string ToString() => $"{Kind}: {Text}" + (Where is null ? "" : $" ({Where})");
}
