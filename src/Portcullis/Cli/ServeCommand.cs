using System.CommandLine;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.Cli;

public static partial class ServeCommand
{
    private static readonly Option<string?> Urls = new Option<string?>("--urls")
    {
        Description = "Addresses to listen on, ';'-separated. Default https://127.0.0.1:8443.",
    }.WithUrlCheck();

    public static Command Create(CliIo io)
    {
        var command = new Command("serve", "Run the Portcullis server.");
        command.Options.Add(Urls);
        command.SetAction(async (parse, ct) =>
        {
            var overrides = CliApp.Overrides(parse);
            if (parse.GetValue(Urls) is { Length: > 0 } urls)
            {
                overrides["urls"] = urls;
            }

            WebApplication? app = null;
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            TimeSpan built, initialized;
            try
            {
                var builder = PortcullisHost.CreateBuilder(io.WithSettings(overrides)); // an embedding host's settings too, as every command
                // A failed start is reported below in one line; the host's own "Hosting failed to start" would repeat it
                // with a stack trace. A background service's crash is still logged (Critical, event 10).
                builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
                app = PortcullisHost.BuildApp(builder);
                built = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                await PortcullisHost.InitializeAsync(app.Services, ct);
                initialized = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                await app.StartAsync(ct); // binds the ports and validates the remaining options
            }
            catch (Exception ex) when (CliErrors.Describe(ex) is { } error)
            {
                if (app is not null)
                {
                    // Stopped before disposed: background services already running end quietly instead of as crashes.
                    await app.StopAsync(CancellationToken.None);
                    await app.DisposeAsync();
                }

                return await CliErrors.ReportAsync(io, parse, "Portcullis cannot start: ", ex, error);
            }

            await using (app)
            {
                // Where start-up time goes (issue 8: start to ready ≤ 2 s), one line, no configuration values.
                var listened = System.Diagnostics.Stopwatch.GetElapsedTime(started) - initialized;
                using (var process = System.Diagnostics.Process.GetCurrentProcess())
                {
                    var sinceProcessStart = (long)(DateTime.Now - process.StartTime).TotalMilliseconds;
                    LogStarted(app.Logger, sinceProcessStart, (long)built.TotalMilliseconds, (long)(initialized - built).TotalMilliseconds, (long)listened.TotalMilliseconds);
                }

                await PrintBannerAsync(app, io);
                await Doctor.LogAsync(app.Services, app.Logger, ct);
                await app.WaitForShutdownAsync(ct);
            }

            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>The banner (<see cref="StartupBanner"/>) goes to standard error: standard output carries only log lines.</summary>
    private static async Task PrintBannerAsync(WebApplication app, CliIo io)
    {
        foreach (var line in StartupBanner.Lines(await StartupBanner.GatherAsync(app, PortcullisHost.CertificateInUse)))
        {
            await io.Error.WriteLineAsync(line);
        }
    }

    [LoggerMessage(EventId = EventIds.Hosting.Started, Level = LogLevel.Information,
        Message = "Started {SinceProcessStartMs} ms after the process: build {BuildMs} ms, initialize {InitializeMs} ms, listen {ListenMs} ms.")]
    private static partial void LogStarted(ILogger logger, long sinceProcessStartMs, long buildMs, long initializeMs, long listenMs);
}
