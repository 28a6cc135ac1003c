using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Audit;

/// <summary>
/// High-volume denials (rate-limit rejections) are counted per (route, policies, client IP) and written as one
/// audit event per key per <see cref="Interval"/> with the count, so a flood cannot flood the audit store: at most
/// one row per key per minute, and at most <see cref="MaxKeys"/> keys per interval (the rest are summed into one
/// "(other)" row). The metric counts every rejection.
/// </summary>
public sealed partial class RejectionAggregator(
    IServiceScopeFactory scopes, PortcullisMetrics metrics, TimeProvider time, ILogger<RejectionAggregator> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    public const int MaxKeys = 1000;
    private const string Other = "(other)";

    private ConcurrentDictionary<(string Route, string Policies, string Client), long> _counts = new();

    public void Rejected(string route, string policies, string client)
    {
        metrics.RateLimitRejections.Add(1, new KeyValuePair<string, object?>("policy", policies));
        var counts = _counts;
        var key = counts.Count >= MaxKeys && !counts.ContainsKey((route, policies, client)) ? (Other, Other, Other) : (route, policies, client);
        counts.AddOrUpdate(key, 1, (_, n) => n + 1);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await FlushAsync(stoppingToken);
        }
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        var counts = Interlocked.Exchange(ref _counts, new());
        if (counts.IsEmpty)
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var now = time.GetUtcNow();
            foreach (var ((route, policies, client), count) in counts)
            {
                db.AuditEvents.Add(new AuditEvent
                {
                    Timestamp = now,
                    EventId = AuditEvents.RateLimited.Id,
                    Name = AuditEvents.RateLimited.Name,
                    Outcome = AuditOutcomes.Denied,
                    Actor = "anonymous",
                    ClientIp = client == Other ? null : client,
                    Target = route.Length > 200 ? route[..200] : route,
                    Details = System.Text.Json.JsonSerializer.Serialize(new { policies, count, intervalSeconds = (int)Interval.TotalSeconds }),
                });
            }

            await db.SaveChangesAsync(ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            metrics.AuditWriteFailures.Add(counts.Count);
            LogFlushFailed(logger, ex);
        }
    }

    [LoggerMessage(EventId = EventIds.Audit.RateLimitRejectionsNotAudited, Level = LogLevel.Error, Message = "Writing aggregated rate-limit rejections to the audit trail failed.")]
    private static partial void LogFlushFailed(ILogger logger, Exception ex);
}
