using System.Text;
using System.Text.Json;
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

    /// <summary>How many characters were captured before the first one still in <see cref="_text"/>.</summary>
    private long _start;

    private LogCapture(IEnumerable<ConsoleFormatter> formatters, Action<string> overflow)
        : base(formatters) => _overflow = overflow;

    /// <summary>Adds a capture to a server's services; the formatter is the one the console provider uses (JSON).</summary>
    public static void AddTo(IServiceCollection services, Action<string> overflow, Action<LogCapture> created) =>
        services.AddSingleton<ILoggerProvider>(sp =>
        {
            // Logging:StackTraces as the server's own providers read it.
            var capture = new LogCapture(sp.GetServices<ConsoleFormatter>(), overflow)
            {
                StackTraces = Microsoft.Extensions.Configuration.ConfigurationBinder.GetValue<bool>(sp.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>(), Portcullis.Hosting.JsonLineProvider.StackTracesKey),
            };
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
            _start += _text.Length;
            _text.Clear();
            return text;
        }
    }

    /// <summary>A position in the capture, for <see cref="EntriesSince"/>.</summary>
    public long Mark()
    {
        lock (_text)
        {
            return _start + _text.Length;
        }
    }

    /// <summary>
    /// The entries written since <paramref name="mark"/>, parsed. Fails if some were already drained or handed to
    /// the canary: a check of fewer entries than were written would pass by accident.
    /// </summary>
    public IReadOnlyList<Entry> EntriesSince(long mark)
    {
        string text;
        lock (_text)
        {
            Assert.True(mark >= _start, "Log entries since the mark were drained; they cannot be checked.");
            text = _text.ToString((int)(mark - _start), (int)(_start + _text.Length - mark));
        }

        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Entry.Parse)];
    }

    /// <summary>
    /// One captured line: what the JSON formatter wrote. <see cref="Exception"/> is the exception's
    /// <c>ToString()</c> (type name first), absent when none was logged.
    /// </summary>
    public sealed record Entry(int EventId, LogLevel Level, string Category, string Message, string? Exception)
    {
        public static Entry Parse(string line)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            return new Entry(
                root.GetProperty(nameof(EventId)).GetInt32(),
                Enum.Parse<LogLevel>(root.GetProperty("LogLevel").GetString()!),
                root.GetProperty(nameof(Category)).GetString()!,
                root.GetProperty(nameof(Message)).GetString()!,
                root.TryGetProperty(nameof(Exception), out var exception) ? exception.GetString() : null);
        }

        /// <summary>The logged exception's type, looked up by the name its text starts with (null if none was logged).</summary>
        public Type? ExceptionType()
        {
            if (Exception is null)
            {
                return null;
            }

            var name = Exception.Split(':', '\n', '\r')[0].Trim();
            var type = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(name)).FirstOrDefault(t => t is not null);
            Assert.True(type is not null, $"The logged exception's type {name} is not loaded.");
            return type;
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
                _start += _text.Length;
                _text.Clear();
            }
        }

        if (full is not null)
        {
            _overflow(full);
        }
    }
}
