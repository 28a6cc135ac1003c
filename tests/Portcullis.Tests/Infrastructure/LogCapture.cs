using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A logger provider beside the console one that writes each entry through the same JSON console formatter into
/// memory, so tests see exactly the text the server writes to stdout — after redaction and enrichment — not just the
/// state objects. Memory is capped: past <see cref="MaxChars"/> the text is handed to the canary and dropped.
/// </summary>
public sealed class LogCapture : Portcullis.Hosting.JsonLineProvider
{
    public const int MaxChars = 4 * 1024 * 1024;

    private readonly Action<string> _overflow;
    private readonly StringBuilder _text = new();

    private LogCapture(IEnumerable<ConsoleFormatter> formatters, Action<string> overflow)
        : base(formatters) => _overflow = overflow;

    /// <summary>Adds a capture to a server's services; the formatter is the one the console provider uses (JSON).</summary>
    public static void AddTo(IServiceCollection services, Action<string> overflow, Action<LogCapture> created) =>
        services.AddSingleton<ILoggerProvider>(sp =>
        {
            var capture = new LogCapture(sp.GetServices<ConsoleFormatter>(), overflow);
            created(capture);
            return capture;
        });

    /// <summary>Everything captured since the last <see cref="Drain"/>.</summary>
    public string Text
    {
        get
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }

    /// <summary>Returns the captured text and forgets it.</summary>
    public string Drain()
    {
        lock (_text)
        {
            var text = _text.ToString();
            _text.Clear();
            return text;
        }
    }

    protected override void WriteLine(string line)
    {
        string? full = null;
        lock (_text)
        {
            _text.Append(line);
            if (_text.Length > MaxChars)
            {
                full = _text.ToString();
                _text.Clear();
            }
        }

        if (full is not null)
        {
            _overflow(full);
        }
    }
}
