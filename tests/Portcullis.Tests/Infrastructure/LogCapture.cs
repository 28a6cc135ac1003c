using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A logger provider beside the console one that writes each entry through the same JSON console formatter into
/// memory, so tests see exactly the text the server writes to stdout — after redaction, with scopes — not just the
/// state objects. Memory is capped: past <see cref="MaxChars"/> the text is handed to the canary and dropped.
/// </summary>
public sealed class LogCapture : ILoggerProvider, ISupportExternalScope
{
    public const int MaxChars = 4 * 1024 * 1024;

    private readonly ConsoleFormatter _formatter;
    private readonly Action<string> _overflow;
    private readonly StringBuilder _text = new();
    private IExternalScopeProvider? _scopes;

    private LogCapture(ConsoleFormatter formatter, Action<string> overflow)
    {
        _formatter = formatter;
        _overflow = overflow;
    }

    /// <summary>Adds a capture to a server's services; the formatter is the one the console provider uses (JSON).</summary>
    public static void AddTo(IServiceCollection services, Action<string> overflow, Action<LogCapture> created) =>
        services.AddSingleton<ILoggerProvider>(sp =>
        {
            var capture = new LogCapture(sp.GetServices<ConsoleFormatter>().Single(f => f.Name == ConsoleFormatterNames.Json), overflow);
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

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private void Write<TState>(LogLevel level, string category, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        using var writer = new StringWriter();
        _formatter.Write(new LogEntry<TState>(level, category, id, state, exception, formatter), _scopes, writer);
        string? full = null;
        lock (_text)
        {
            _text.Append(writer.GetStringBuilder());
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

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Write(logLevel, category, eventId, state, exception, formatter);
    }
}
