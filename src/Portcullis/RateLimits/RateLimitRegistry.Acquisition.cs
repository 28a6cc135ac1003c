using System.Threading.RateLimiting;

namespace Portcullis.RateLimits;

// Acquisition: a phase's permits, all or none.
public sealed partial class RateLimitRegistry
{
    /// <summary>
    /// Acquires a permit of every limit of one phase that applies to the request, shortest horizon first. When
    /// several limits count time windows, each is first asked (a zero-permit request, which takes nothing) whether
    /// it would admit, so a request one limit refuses spends no permit of another ("5 per minute AND 100 per day":
    /// a refused request never uses the daily budget). Only requests racing for the very last permits can still
    /// spend one; concurrency permits always come back when the lease is disposed.
    /// </summary>
    internal async ValueTask<Acquired> AcquireAsync(HttpContext context, bool beforeAuthentication, CancellationToken cancellationToken)
    {
        var phases = Resolve(context);
        var limits = beforeAuthentication ? phases.Early : phases.Late;
        if (limits.Length == 0)
        {
            return Acquired.None;
        }

        if (limits.Count(l => l.Algorithm != RateLimitAlgorithm.Concurrency && !l.Queues) > 1)
        {
            foreach (var limit in limits)
            {
                if (limit.Algorithm == RateLimitAlgorithm.Concurrency || limit.Queues)
                {
                    continue;
                }

                var probe = limit.Limiter.AttemptAcquire(context, 0);
                if (!probe.IsAcquired)
                {
                    return new Acquired(null, probe, limit);
                }

                probe.Dispose();
            }
        }

        RateLimitLease[]? leases = null;
        for (var i = 0; i < limits.Length; i++)
        {
            var limit = limits[i];
            var lease = limit.Queues
                ? await limit.Limiter.AcquireAsync(context, 1, cancellationToken)
                : limit.Limiter.AttemptAcquire(context, 1);
            if (!lease.IsAcquired)
            {
                for (var j = i - 1; j >= 0; j--)
                {
                    leases![j].Dispose();
                }

                return new Acquired(null, lease, limit);
            }

            leases ??= new RateLimitLease[limits.Length];
            leases[i] = lease;
        }

        return new Acquired(leases, null, null);
    }

    /// <summary>What one phase got: its leases (held for the request), or the refusing lease and limit.</summary>
    internal readonly record struct Acquired(RateLimitLease[]? Leases, RateLimitLease? Refusal, Limit? RefusedBy)
    {
        public static readonly Acquired None = new([], null, null);

        public bool IsAcquired => Refusal is null;

        public void Dispose()
        {
            Refusal?.Dispose();
            if (Leases is not null)
            {
                for (var i = Leases.Length - 1; i >= 0; i--)
                {
                    Leases[i]?.Dispose();
                }
            }
        }
    }
}
