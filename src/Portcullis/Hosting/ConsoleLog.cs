using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Hosting;

/// <summary>
/// The JSON lines on stdout. Each entry is formatted by the framework's JSON console formatter (the same text, options
/// and <c>Logging:Console</c> settings as <c>AddJsonConsole</c>) on the thread that logs it; only the hand-over and the
/// write differ from the framework's console provider. That provider takes one lock per line to queue it and issues one
/// write to stdout per line: with one request line per request, threads under load spin on that lock (the profile is
/// in BENCHMARKS.md). Here a line is handed over through
/// a lock-free queue and a single writer thread (<see cref="LogLineWriter"/>) writes everything queued in one call.
/// A logging thread never waits for stdout: past <see cref="MaxQueuedLines"/> waiting lines, a line is dropped at once
/// and counted (a stdout nobody reads would otherwise hand its delay to every request).
/// <para>
/// On a terminal, or with <c>Logging:Format=Text</c>, the lines are the framework's simple console formatter's instead
/// (<see cref="ConsoleLogFormats"/>), through the same queue and writer: the same sink metrics and alerts either way.
/// </para>
/// </summary>
[ProviderAlias("Console")] // Logging:Console:LogLevel and Logging:Console:FormatterOptions keep working
public sealed class JsonConsoleLogProvider : QueuedJsonLineProvider
{
    public JsonConsoleLogProvider(IEnumerable<ConsoleFormatter> formatters)
        : this(formatters, OpenStandardOutput())
    {
    }

    /// <summary>Stdout in <paramref name="format"/>.</summary>
    public JsonConsoleLogProvider(IEnumerable<ConsoleFormatter> formatters, ConsoleLogFormat format)
        : this(formatters, OpenStandardOutput(), format: format)
    {
    }

    internal JsonConsoleLogProvider(IEnumerable<ConsoleFormatter> formatters, Stream output, int maxQueuedLines = MaxQueuedLines, ConsoleLogFormat format = ConsoleLogFormat.Json)
        : base(formatters, new LogLineWriter(LogSinks.Stdout, output, maxQueuedLines, ownsOutput: false), ConsoleLogFormats.FormatterName(format))
    {
        Format = format;
    }

    public ConsoleLogFormat Format { get; }

    /// <summary>At most this many formatted lines wait for the writer; past it, lines are dropped (and counted).</summary>
    public const int MaxQueuedLines = 10_000;

    /// <summary>
    /// Logs to stdout: registers the framework's console formatters (with <paramref name="configure"/> for the JSON
    /// one) and this provider in place of the framework's console provider, in the format <c>Logging:Format</c> and
    /// stdout call for (<see cref="ConsoleLogFormats.Select"/>, read when the provider is created: after every
    /// configuration source is in).
    /// </summary>
    public static ILoggingBuilder AddTo(ILoggingBuilder logging, Action<JsonConsoleFormatterOptions> configure)
    {
        logging.AddJsonConsole(configure);
        logging.AddSimpleConsole(ConsoleLogFormats.ConfigureText);
        foreach (var framework in logging.Services.Where(d => d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider)).ToList())
        {
            logging.Services.Remove(framework);
        }

        logging.Services.AddSingleton<ILoggerProvider>(services => new JsonConsoleLogProvider(
            services.GetServices<ConsoleFormatter>(),
            ConsoleLogFormats.Select(services.GetRequiredService<IConfiguration>(), ConsoleLogFormats.StdoutIsTerminal))
        {
            StackTraces = services.GetRequiredService<IConfiguration>().GetValue<bool>(StackTracesKey),
        });
        return logging;
    }

    /// <summary>
    /// The console stream pretends that a write to a pipe whose reader went away succeeded (it ignores EPIPE:
    /// dotnet/runtime ConsolePal.Unix.cs), so every line would be lost unseen. When stdout is a pipe or a socket (a
    /// container runtime, systemd's journal, a log shipper) it is written as a plain unbuffered file stream on the same
    /// descriptor, which reports that failure; a terminal or a file keeps the console stream (a file stream would keep a
    /// write position of its own, and a terminal cannot lose its reader that way).
    /// </summary>
    private static Stream OpenStandardOutput()
    {
        // Linux names the descriptor's target "pipe:[…]" or "socket:[…]".
        if (OperatingSystem.IsLinux() && new FileInfo("/proc/self/fd/1").LinkTarget is { } target
            && (target.StartsWith("pipe:", StringComparison.Ordinal) || target.StartsWith("socket:", StringComparison.Ordinal)))
        {
            return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        }

        return Console.OpenStandardOutput();
    }
}
