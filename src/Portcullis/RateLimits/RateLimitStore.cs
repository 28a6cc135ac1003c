using System.Diagnostics;
using System.Threading.RateLimiting;

namespace Portcullis.RateLimits;

/// <summary>One configured limit as the store needs it to build a partition's limiter.</summary>
public sealed record RateLimitDefinition(
    string Policy,
    string Name,
    RateLimitAlgorithm Algorithm,
    int PermitLimit,
    TimeSpan? Window,
    int SegmentsPerWindow,
    int TokensPerPeriod,
    TimeSpan? ReplenishmentPeriod,
    int QueueLimit);

/// <summary>
/// Where the counters live (<c>RateLimits:Store</c>). The registry decides which limits apply and the partition key;
/// the store creates the <see cref="RateLimiter"/> that counts one partition of one limit. In process
/// (<see cref="InProcessRateLimitStore"/>) today; a Redis store returning RedisRateLimiting's limiters plugs in here
/// when Portcullis scales out (docs/rate-limits.md).
/// </summary>
public interface IRateLimitStore
{
    /// <summary>The limiter for one partition; the registry's partitioned limiter caches it and disposes it when idle.</summary>
    RateLimiter Create(RateLimitDefinition limit, string partitionKey);
}

/// <summary>Statistics that also say when the partition's quota is fully back (the RateLimit field's <c>t</c>).</summary>
public sealed class RateLimitStatistics : RateLimiterStatistics
{
    /// <summary>Time until the quota is whole again (window limits: the window's end), or null when unknown.</summary>
    public TimeSpan? ResetAfter { get; init; }
}

/// <summary>
/// System.Threading.RateLimiting's limiters, in process memory. Replenishment is left to the partitioned limiter's
/// single heartbeat (AutoReplenishment off: no timer per partition, which matters with a million partitions).
/// </summary>
public sealed class InProcessRateLimitStore : IRateLimitStore
{
    public const string Name = "InProcess";

    public RateLimiter Create(RateLimitDefinition limit, string partitionKey) => limit.Algorithm switch
    {
        RateLimitAlgorithm.FixedWindow => new ResetReporting(
            new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
            {
                PermitLimit = limit.PermitLimit, Window = limit.Window!.Value, QueueLimit = limit.QueueLimit, AutoReplenishment = false,
            }),
            limit),
        RateLimitAlgorithm.SlidingWindow => new ResetReporting(
            new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
            {
                PermitLimit = limit.PermitLimit, Window = limit.Window!.Value, SegmentsPerWindow = limit.SegmentsPerWindow, QueueLimit = limit.QueueLimit, AutoReplenishment = false,
            }),
            limit),
        RateLimitAlgorithm.TokenBucket => new ResetReporting(
            new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = limit.PermitLimit, TokensPerPeriod = limit.TokensPerPeriod, ReplenishmentPeriod = limit.ReplenishmentPeriod!.Value, QueueLimit = limit.QueueLimit, AutoReplenishment = false,
            }),
            limit),
        _ => new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = limit.PermitLimit, QueueLimit = limit.QueueLimit }),
    };

    /// <summary>
    /// Passes everything to the library's limiter and notes when it last replenished (the heartbeat calls
    /// <see cref="TryReplenish"/>; the library replenishes once a period has passed since its last replenishment,
    /// and so does this note, at the same calls), so it can say how long until the quota is whole again. No
    /// counting happens here.
    /// </summary>
    private sealed class ResetReporting(ReplenishingRateLimiter inner, RateLimitDefinition limit) : ReplenishingRateLimiter
    {
        private readonly TimeSpan _period = limit.Algorithm switch
        {
            RateLimitAlgorithm.SlidingWindow => limit.Window!.Value / limit.SegmentsPerWindow,
            RateLimitAlgorithm.TokenBucket => limit.ReplenishmentPeriod!.Value,
            _ => limit.Window!.Value,
        };

        private long _lastReplenished = Stopwatch.GetTimestamp();

        public override bool IsAutoReplenishing => false;

        public override TimeSpan ReplenishmentPeriod => inner.ReplenishmentPeriod;

        public override TimeSpan? IdleDuration => inner.IdleDuration;

        public override bool TryReplenish()
        {
            var now = Stopwatch.GetTimestamp();
            if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastReplenished), now) >= _period)
            {
                Volatile.Write(ref _lastReplenished, now);
            }

            return inner.TryReplenish();
        }

        public override RateLimiterStatistics? GetStatistics()
        {
            var statistics = inner.GetStatistics();
            if (statistics is null)
            {
                return null;
            }

            var since = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastReplenished));
            // The partitioned limiter's 100 ms heartbeat replenishes: the reset may come up to that much later.
            var toNext = since >= _period ? TimeSpan.Zero : _period - since;
            var missing = Math.Max(0, limit.PermitLimit - statistics.CurrentAvailablePermits);
            TimeSpan? reset = limit.Algorithm switch
            {
                // The window ends at the next replenishment, used or not.
                RateLimitAlgorithm.FixedWindow => toNext,
                // What was used in the newest segment comes back last: one window after that segment began.
                RateLimitAlgorithm.SlidingWindow => missing == 0 ? TimeSpan.Zero : toNext + (limit.Window!.Value - _period),
                // Tokens come back TokensPerPeriod at a time.
                RateLimitAlgorithm.TokenBucket => missing == 0 ? TimeSpan.Zero : toNext + (_period * (((missing + limit.TokensPerPeriod - 1) / limit.TokensPerPeriod) - 1)),
                _ => null,
            };

            return new RateLimitStatistics
            {
                CurrentAvailablePermits = statistics.CurrentAvailablePermits,
                CurrentQueuedCount = statistics.CurrentQueuedCount,
                TotalFailedLeases = statistics.TotalFailedLeases,
                TotalSuccessfulLeases = statistics.TotalSuccessfulLeases,
                ResetAfter = reset,
            };
        }

        protected override RateLimitLease AttemptAcquireCore(int permitCount) => inner.AttemptAcquire(permitCount);

        protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
            inner.AcquireAsync(permitCount, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        protected override async ValueTask DisposeAsyncCore()
        {
            await inner.DisposeAsync();
            await base.DisposeAsyncCore();
        }
    }
}
