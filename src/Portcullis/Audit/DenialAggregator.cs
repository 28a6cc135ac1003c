using System.Collections.Concurrent;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Audit;

/// <summary>
/// Repeated identical denials (same event, actor, method, route and what was missing: a permission, a gateway role or scope, or a token) are not one audit
/// row each: the first in an <see cref="Interval"/> is written at once, with its trace id, and the repeats are
/// counted and written as one <c>authz_fail</c> event with the count when the interval ends. So a caller hammering
/// a forbidden route costs at most two rows per key per minute, and at most <see cref="MaxKeys"/> keys are tracked per
/// interval (further denials are summed into one "(other)" row). The metric counts every denial.
/// Throttled password logins (<see cref="AuditEvents.LoginThrottled"/>) go through here too, keyed by the hashed name
/// they were for (as the route, which becomes the event's target): each costs no password work, so without this an
/// attacker could spend the database's write capacity at hundreds of rows a second.
/// </summary>
public sealed partial class DenialAggregator(
    IServiceScopeFactory scopes, PortcullisMetrics metrics, TimeProvider time, ILogger<DenialAggregator> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    public const int MaxKeys = 1000;
    private const string Other = "(other)";

    private sealed class Repeats
    {
        public long Count;
        public string? LastClientIp;
    }

    private ConcurrentDictionary<(AuditEvents.Definition Event, string Actor, string Method, string Route, string Permission), Repeats> _seen = new();

    /// <summary>
    /// Counts a denial; true when it is the first of its kind in this interval and should be written now, false
    /// when it was counted for the interval's summary event.
    /// </summary>
    public bool Denied(string actor, string method, string route, string permission, string? clientIp) =>
        Denied(AuditEvents.AccessDenied, actor, method, route, permission, clientIp);

    /// <summary>
    /// The same for another denial event (the gateway's 401 and 403): <paramref name="missing"/> is what was lacking
    /// (a permission, roles/scopes, or "authentication"); it is part of the key and of the summary event.
    /// </summary>
    public bool Denied(AuditEvents.Definition definition, string actor, string method, string route, string missing, string? clientIp)
    {
        if (definition == AuditEvents.AccessDenied || definition == AuditEvents.GatewayDenied)
        {
            metrics.AuthorizationDenials.Add(1); // 403s only: a 401 or a throttled login is not an authorization decision
        }

        var seen = _seen;
        (AuditEvents.Definition Event, string Actor, string Method, string Route, string Permission) key = (definition, actor, method, route, missing);
        if (seen.Count >= MaxKeys && !seen.ContainsKey(key))
        {
            key = (definition, Other, Other, Other, Other);
        }

        // Exactly one caller wins the TryAdd for a key in an interval: that denial is written at once.
        if (key.Actor != Other && seen.TryAdd(key, new Repeats()))
        {
            return true;
        }

        var repeats = seen.GetOrAdd(key, _ => new Repeats());
        Interlocked.Increment(ref repeats.Count);
        repeats.LastClientIp = clientIp;
        return false;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await FlushAsync(stoppingToken);
        }
    }

    /// <summary>Counts of the interval in progress are written on a graceful stop too.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await FlushAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Shutdown ran out of time: this minute's repeat counts are lost (the metric has them).
        }
    }

    /// <summary>Writes one event per key that saw repeats in the interval that just ended.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        var seen = Interlocked.Exchange(ref _seen, new());
        var repeated = seen.Where(s => Interlocked.Read(ref s.Value.Count) > 0).ToList();
        if (repeated.Count == 0)
        {
            return;
        }

        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var now = time.GetUtcNow();
            foreach (var ((definition, actor, method, route, permission), repeats) in repeated)
            {
                db.AuditEvents.Add(new AuditEvent
                {
                    Timestamp = now,
                    EventId = definition.Id,
                    Name = definition.Name,
                    Outcome = AuditOutcomes.Denied,
                    Actor = actor == Other ? "anonymous" : actor,
                    ClientIp = actor == Other ? null : repeats.LastClientIp,
                    Target = route.Length > 200 ? route[..200] : route,
                    Details = definition == AuditEvents.LoginThrottled
                        ? System.Text.Json.JsonSerializer.Serialize(new
                        {
                            count = Interlocked.Read(ref repeats.Count),
                            repeated = true,
                            intervalSeconds = (int)Interval.TotalSeconds,
                        })
                        : definition == AuditEvents.AccessDenied
                        ? System.Text.Json.JsonSerializer.Serialize(new
                        {
                            method,
                            missingPermission = permission,
                            count = Interlocked.Read(ref repeats.Count),
                            repeated = true,
                            intervalSeconds = (int)Interval.TotalSeconds,
                        })
                        : System.Text.Json.JsonSerializer.Serialize(new
                        {
                            method,
                            missing = permission,
                            count = Interlocked.Read(ref repeats.Count),
                            repeated = true,
                            intervalSeconds = (int)Interval.TotalSeconds,
                        }),
                });
            }

            await db.SaveChangesAsync(ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            metrics.AuditWriteFailures.Add(repeated.Count);
            LogFlushFailed(logger, ex);
        }
    }

    [LoggerMessage(EventId = EventIds.Audit.DenialsNotAudited, Level = LogLevel.Error, Message = "Writing aggregated authorization denials to the audit trail failed.")]
    private static partial void LogFlushFailed(ILogger logger, Exception ex);
}
