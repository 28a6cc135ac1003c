using Portcullis.Audit;

namespace Portcullis.Hosting;

/// <summary>
/// The log writers of this process — stdout, and the file when <c>Logging:File:Path</c> is set — for readiness, the
/// <c>portcullis_log_*</c> metrics and the <c>log_sink_failed</c> alert.
/// </summary>
public sealed class LogSinks(IEnumerable<ILoggerProvider> providers)
{
    public const string Stdout = "stdout";
    public const string File = "file";

    public IReadOnlyList<LogLineWriter> Writers { get; } = [.. providers.OfType<QueuedJsonLineProvider>().Select(p => p.Writer)];

    /// <summary>True while any writer loses lines or is stuck: readiness reports degraded.</summary>
    public bool AnyFailing => Writers.Any(w => w.IsFailing);
}

/// <summary>
/// Raises one <c>security.alert</c> of kind <c>log_sink_failed</c> per failure episode of each log writer: in the audit
/// trail (the database — it cannot rely on the log that failed, and it is retried until written), as the
/// <c>portcullis_security_alerts_total</c> metric and as a warning line (which reaches the sinks still working). An
/// episode starts with the first lost line, failed write or stuck write, and ends after <see cref="QuietPeriod"/>
/// without any, so a destination that keeps failing and recovering raises one alert, not one per line or per second.
/// </summary>
public sealed partial class LogSinkMonitor(
    LogSinks sinks, IServiceScopeFactory scopes, PortcullisMetrics metrics, TimeProvider time, ILogger<LogSinkMonitor> logger) : BackgroundService
{
    public const string AlertKind = "log_sink_failed";

    /// <summary>How often the writers are looked at: the most an alert lags the failure.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a writer must go without a problem before its episode ends and a new failure alerts again.</summary>
    public static readonly TimeSpan QuietPeriod = TimeSpan.FromMinutes(1);

    private sealed class Episode
    {
        public long Problems;
        public bool Open;
        public bool AlertPending;
        public long LastProblemAt;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var episodes = sinks.Writers.ToDictionary(w => w, _ => new Episode());
        using var timer = new PeriodicTimer(PollInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var (writer, episode) in episodes)
            {
                await CheckAsync(writer, episode, stoppingToken);
            }
        }
    }

    private async Task CheckAsync(LogLineWriter writer, Episode episode, CancellationToken ct)
    {
        var problems = writer.LinesDroppedQueueFull + writer.WriteFailures;
        if (writer.IsFailing || problems != episode.Problems)
        {
            episode.Problems = problems;
            episode.LastProblemAt = time.GetTimestamp(); // monotonic: a wall-clock step neither ends nor stretches an episode
            if (!episode.Open)
            {
                episode.Open = true;
                episode.AlertPending = true;
                LogSinkFailed(logger, writer.Sink, writer.LinesDroppedQueueFull + writer.LinesDroppedWriteFailed, writer.WriteFailures);
                metrics.SecurityAlerts.Add(1, new KeyValuePair<string, object?>("kind", AlertKind));
            }
        }
        else if (episode.Open && time.GetElapsedTime(episode.LastProblemAt) >= QuietPeriod)
        {
            episode.Open = false;
            LogSinkRecovered(logger, writer.Sink);
        }

        if (episode.AlertPending)
        {
            episode.AlertPending = !await TryAuditAsync(writer, ct);
        }
    }

    /// <summary>Writes the alert's audit event; false (and retried at the next look) while the database refuses it.</summary>
    private async Task<bool> TryAuditAsync(LogLineWriter writer, CancellationToken ct)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<Storage.PortcullisDb>();
            scope.ServiceProvider.GetRequiredService<AuditLog>().Record(AuditEvents.SecurityAlert, AuditOutcomes.Failure, $"log:{writer.Sink}",
                new { kind = AlertKind, sink = writer.Sink, linesDropped = writer.LinesDroppedQueueFull + writer.LinesDroppedWriteFailed, writeFailures = writer.WriteFailures },
                actor: "system");
            await db.SaveChangesAsync(ct);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            metrics.AuditWriteFailures.Add(1);
            LogAlertAuditFailed(logger, ex);
            return false;
        }
    }

    [LoggerMessage(EventId = EventIds.Hosting.LogSinkFailed, Level = LogLevel.Warning,
        Message = "security.alert: log_sink_failed: the {Sink} log is losing lines ({Dropped} dropped, {WriteFailures} failed writes so far); readiness reports degraded while it lasts.")]
    private static partial void LogSinkFailed(ILogger logger, string sink, long dropped, long writeFailures);

    [LoggerMessage(EventId = EventIds.Hosting.LogSinkRecovered, Level = LogLevel.Information, Message = "The {Sink} log has taken every line for a while again.")]
    private static partial void LogSinkRecovered(ILogger logger, string sink);

    [LoggerMessage(EventId = EventIds.Hosting.LogSinkAlertNotAudited, Level = LogLevel.Error, Message = "Writing the log_sink_failed alert to the audit trail failed; it is retried.")]
    private static partial void LogAlertAuditFailed(ILogger logger, Exception ex);
}
