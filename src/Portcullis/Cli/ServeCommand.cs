using System.CommandLine;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

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

    /// <summary>The banner goes to standard error: standard output carries only JSON log lines.</summary>
    private static async Task PrintBannerAsync(WebApplication app, CliIo io)
    {
        var storage = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        await io.Error.WriteLineAsync($"Portcullis is listening on {string.Join(", ", app.Urls)}");
        await io.Error.WriteLineAsync($"Data directory: {Path.GetFullPath(storage.DataDirectory)}");
        if (PortcullisHost.CertificateInUse is { } cert)
        {
            var kind = cert.SelfSigned ? "self-signed development certificate" : "certificate";
            await io.Error.WriteLineAsync($"TLS {kind}: {cert.Path}");
            await io.Error.WriteLineAsync($"  SHA-256 fingerprint: {cert.Sha256}");
        }

        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        if ((await users.GetUsersInRoleAsync(Roles.Admin)).Count == 0)
        {
            var dataDir = $" --data-dir {Path.GetFullPath(storage.DataDirectory)}";
            await io.Error.WriteLineAsync("No administrator exists yet. Create one with:");
            await io.Error.WriteLineAsync($"  portcullis admin create --username root --email root@example.com{dataDir}");
            await io.Error.WriteLineAsync("  (it asks for the password; or pipe it in with --password-stdin)");
        }
    }

    [LoggerMessage(EventId = EventIds.Hosting.Started, Level = LogLevel.Information,
        Message = "Started {SinceProcessStartMs} ms after the process: build {BuildMs} ms, initialize {InitializeMs} ms, listen {ListenMs} ms.")]
    private static partial void LogStarted(ILogger logger, long sinceProcessStartMs, long buildMs, long initializeMs, long listenMs);
}
