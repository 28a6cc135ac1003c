using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using System.Text;
using Serilog;
using Serilog.Configuration;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace Portcullis.Hosting;

/// <summary>Optional rolling log file. Section <c>Logging:File</c>; off unless <see cref="Path"/> is set.</summary>
public sealed class FileLogOptions
{
    public const string Section = "Logging:File";

    /// <summary>
    /// The log file, e.g. <c>/var/log/portcullis/portcullis-.log</c> (the date is inserted before the extension when
    /// the file rolls daily). Default none: stdout only.
    /// </summary>
    public string? Path { get; set; }

    /// <summary>A file rolls over when it reaches this size, in bytes. Default 100 MB.</summary>
    public long FileSizeLimitBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>How many files are kept, the current one included. Default 14.</summary>
    public int RetainedFileCountLimit { get; set; } = 14;

    /// <summary>Also start a new file every day. Default true.</summary>
    public bool RollDaily { get; set; } = true;
}

public sealed class FileLogOptionsValidator : IValidateOptions<FileLogOptions>
{
    public ValidateOptionsResult Validate(string? name, FileLogOptions options)
    {
        var problems = new List<string>();
        if (options.Path is not null && string.IsNullOrWhiteSpace(options.Path))
        {
            problems.Add("Logging:File:Path is empty: set a file path, or remove the key to log to stdout only.");
        }

        if (options.FileSizeLimitBytes < 1024 * 1024)
        {
            problems.Add("Logging:File:FileSizeLimitBytes must be at least 1048576 (1 MB).");
        }

        if (options.RetainedFileCountLimit < 1)
        {
            problems.Add("Logging:File:RetainedFileCountLimit must be at least 1.");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

/// <summary>
/// Writes the same JSON lines as stdout — each entry goes through the .NET JSON console formatter, after
/// redaction and enrichment — to a file that Serilog's file sink rolls by size (and day) and prunes. Lines are handed to
/// a <see cref="LogLineWriter"/> like stdout's, so a slow, full or vanished disk costs lines (counted, and reported by
/// readiness, the metrics and the <c>log_sink_failed</c> alert), never a request's time.
/// </summary>
public sealed class FileLogProvider(IEnumerable<ConsoleFormatter> formatters, IOptions<FileLogOptions> options)
    : QueuedJsonLineProvider(formatters, new LogLineWriter(LogSinks.File, new RollingFileOutput(options.Value), JsonConsoleLogProvider.MaxQueuedLines, ownsOutput: true))
{
    /// <summary>Adds the provider when <c>Logging:File:Path</c> is set.</summary>
    public static void AddTo(WebApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<FileLogOptions>().BindConfiguration(FileLogOptions.Section);
        builder.Services.AddSingleton<IValidateOptions<FileLogOptions>, FileLogOptionsValidator>();
        if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{FileLogOptions.Section}:{nameof(FileLogOptions.Path)}"]))
        {
            builder.Services.AddSingleton<ILoggerProvider>(services => new FileLogProvider(
                services.GetServices<ConsoleFormatter>(), services.GetRequiredService<IOptions<FileLogOptions>>())
            {
                StackTraces = services.GetRequiredService<IConfiguration>().GetValue<bool>(StackTracesKey),
            });
        }
    }
}

/// <summary>
/// Serilog's rolling file sink as the stream a <see cref="LogLineWriter"/> writes to. Each write is a batch of whole
/// lines, emitted as one event whose message is that literal text (one text token, never parsed as a template), and
/// written through to the file at once (unbuffered), so a failure belongs to the batch that met it. Serilog reports
/// some failures to a listener instead of throwing — a file it could not open is retried only at the next roll or
/// after 30 minutes, and until then each event is refused — and those become exceptions here, so the writer counts
/// them as it counts a full disk.
/// </summary>
internal sealed class RollingFileOutput : Stream, ILoggingFailureListener
{
    private readonly ILogEventSink _file;
    private string? _refused;

    public RollingFileOutput(FileLogOptions o)
    {
        _file = LoggerSinkConfiguration.CreateSink(to => to.File(o.Path!, outputTemplate: "{Message}",
            formatProvider: System.Globalization.CultureInfo.InvariantCulture,
            fileSizeLimitBytes: o.FileSizeLimitBytes, rollOnFileSizeLimit: true,
            retainedFileCountLimit: o.RetainedFileCountLimit,
            rollingInterval: o.RollDaily ? RollingInterval.Day : RollingInterval.Infinite,
            buffered: false));
        if (_file is ISetLoggingFailureListener listened)
        {
            listened.SetFailureListener(this);
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _refused = null;
        var text = new MessageTemplate([new TextToken(Encoding.UTF8.GetString(buffer))]);
        _file.Emit(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, text, []));
        if (_refused is { } reason)
        {
            throw new IOException($"The log file refused the lines: {reason}.");
        }
    }

    public void OnLoggingFailed(object sender, LoggingFailureKind kind, string message, IReadOnlyCollection<LogEvent>? events, Exception? exception)
    {
        // Only a failure that lost events loses lines (a retention clean-up that could not delete an old file does not).
        if (events is { Count: > 0 })
        {
            _refused = message;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                (_file as IDisposable)?.Dispose();
            }
            catch (IOException)
            {
                // Closing flushes what a failed write left behind; those lines were counted as lost when it failed.
            }
        }

        base.Dispose(disposing);
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
