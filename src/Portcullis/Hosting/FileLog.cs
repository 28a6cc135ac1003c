using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Serilog;
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
/// redaction and enrichment — to a file that Serilog's file sink rolls by size (and day) and prunes. Serilog only
/// moves the finished text: a line is one literal text token, never parsed as a message template.
/// </summary>
public sealed class FileLogProvider : JsonLineProvider
{
    private readonly Serilog.Core.Logger _file;

    public FileLogProvider(IEnumerable<ConsoleFormatter> formatters, IOptions<FileLogOptions> options)
        : base(formatters)
    {
        var o = options.Value;
        _file = new Serilog.LoggerConfiguration()
            .MinimumLevel.Verbose() // the .NET log filters already decided
            .WriteTo.File(o.Path!, outputTemplate: "{Message}", formatProvider: System.Globalization.CultureInfo.InvariantCulture,
                fileSizeLimitBytes: o.FileSizeLimitBytes, rollOnFileSizeLimit: true,
                retainedFileCountLimit: o.RetainedFileCountLimit,
                rollingInterval: o.RollDaily ? Serilog.RollingInterval.Day : Serilog.RollingInterval.Infinite,
                buffered: true, flushToDiskInterval: TimeSpan.FromSeconds(1))
            .CreateLogger();
    }

    /// <summary>Adds the provider when <c>Logging:File:Path</c> is set.</summary>
    public static void AddTo(WebApplicationBuilder builder)
    {
        builder.Services.AddOptionsWithValidateOnStart<FileLogOptions>().BindConfiguration(FileLogOptions.Section);
        builder.Services.AddSingleton<IValidateOptions<FileLogOptions>, FileLogOptionsValidator>();
        if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{FileLogOptions.Section}:{nameof(FileLogOptions.Path)}"]))
        {
            builder.Services.AddSingleton<ILoggerProvider, FileLogProvider>();
        }
    }

    protected override void WriteLine(string line)
    {
        var template = new MessageTemplate([new TextToken(line)]);
        _file.Write(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, template, []));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }
}
