using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using ILogger = Microsoft.Extensions.Logging.ILogger;

namespace Portcullis.Hosting;

/// <summary>
/// The base of every provider that writes an entry as the framework's JSON console formatter prints it — stdout
/// (<see cref="JsonConsoleLogProvider"/>), the optional file (<see cref="FileLogProvider"/>), the tests' capture — so
/// each writes exactly the same text, after redaction and enrichment. The entry is formatted on the logging thread into
/// a reused per-thread buffer; a subclass only decides where the finished line goes. Stdout may use the simple (text)
/// formatter instead (<see cref="ConsoleLogFormats"/>): the same entry, message and exception, fewer fields.
/// </summary>
public abstract class JsonLineProvider : ILoggerProvider, ISupportExternalScope
{
    private readonly ConsoleFormatter _formatter;
    private readonly bool _escapeControls;
    private IExternalScopeProvider? _scopes;

    [ThreadStatic]
    private static StringWriter? t_text;

    protected JsonLineProvider(IEnumerable<ConsoleFormatter> formatters)
        : this(formatters, ConsoleFormatterNames.Json)
    {
    }

    /// <param name="formatters">The registered console formatters.</param>
    /// <param name="formatterName">
    /// <see cref="ConsoleFormatterNames.Json"/>, or another framework formatter, whose lines get their control characters
    /// escaped here (the JSON formatter escapes its own).
    /// </param>
    protected JsonLineProvider(IEnumerable<ConsoleFormatter> formatters, string formatterName)
    {
        _formatter = formatters.Single(f => f.Name == formatterName);
        _escapeControls = formatterName != ConsoleFormatterNames.Json;
    }

    /// <summary>
    /// Whether a logged exception is written whole, stack trace included (<c>Logging:StackTraces=true</c>). Default
    /// false: its type and message only, and those of its inner exceptions, on the one line (issue 20: no stack trace
    /// in any log line of the default configuration; the event id, trace id and message say where to look).
    /// </summary>
    public bool StackTraces { get; init; }

    /// <summary>The setting that turns whole exceptions on.</summary>
    public const string StackTracesKey = "Logging:StackTraces";

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    /// <summary>Receives each formatted entry: one JSON object and its line break.</summary>
    protected abstract void WriteLine(string line);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    private void Write<TState>(LogLevel level, string category, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var text = t_text ??= new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        var buffer = text.GetStringBuilder();
        buffer.Clear();
        if (exception is not null && !StackTraces)
        {
            exception = new ExceptionSummary(exception);
        }

        _formatter.Write(new LogEntry<TState>(level, category, id, state, exception, formatter), _scopes, text);
        if (buffer.Length > 0)
        {
            WriteLine(_escapeControls ? ConsoleLogFormats.EscapeControls(buffer) : buffer.ToString());
        }

        if (buffer.Capacity > 64 * 1024)
        {
            t_text = null; // one huge entry (an exception with a long stack) does not pin its buffer to the thread
        }
    }

    /// <summary>What a log line shows of an exception by default: <c>Type: message ---> InnerType: message</c>.</summary>
    private sealed class ExceptionSummary(Exception exception) : Exception(exception.Message)
    {
        public override string ToString()
        {
            var text = new System.Text.StringBuilder();
            for (var e = exception; e is not null; e = e.InnerException)
            {
                text.Append(text.Length == 0 ? "" : " ---> ").Append(e.GetType().FullName).Append(": ").Append(e.Message);
            }

            return text.ToString();
        }
    }

    private sealed class Logger(JsonLineProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Write(logLevel, category, eventId, state, exception, formatter);
    }
}
