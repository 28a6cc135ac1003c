using System.Globalization;
using System.Text;
using System.Threading.RateLimiting;

namespace Portcullis.RateLimits;

// The RateLimit-Policy and RateLimit response fields.
public sealed partial class RateLimitRegistry
{
    /// <summary>
    /// IETF RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers, structured-field lists):
    /// <c>"authenticated";q=100;w=10</c> and <c>"authenticated";r=42;t=3</c>, for every limit applying to the
    /// request. <c>t</c> is the seconds until the quota is whole again (a window's end; for a token bucket, until it
    /// is full), an upper bound; a limit at zero takes <paramref name="retryAfter"/> when given.
    /// </summary>
    public void WriteHeaders(HttpContext context, TimeSpan? retryAfter) => WriteHeaders(context, retryAfter, null, afterAuthentication: true);

    /// <summary>The fields for the limits counted so far: before authentication only, or all.</summary>
    internal void WriteHeaders(HttpContext context, TimeSpan? retryAfter, Limit? refusedBy, bool afterAuthentication)
    {
        var limits = Applying(context);
        if (limits.Length == 0)
        {
            return;
        }

        var policy = new StringBuilder();
        var state = new StringBuilder();
        foreach (var limit in limits)
        {
            if (!afterAuthentication && !limit.BeforeAuthentication)
            {
                continue;
            }

            if (policy.Length > 0)
            {
                policy.Append(", ");
                state.Append(", ");
            }

            policy.Append('"').Append(limit.Name).Append("\";q=").Append(limit.Quota.ToString(CultureInfo.InvariantCulture));
            if (limit.Window is { } window)
            {
                policy.Append(";w=").Append(Seconds(window));
            }

            var statistics = limit.Limiter.GetStatistics(context);
            var remaining = Math.Clamp(statistics?.CurrentAvailablePermits ?? 0, 0, limit.Quota);
            state.Append('"').Append(limit.Name).Append("\";r=").Append(remaining.ToString(CultureInfo.InvariantCulture));
            var reset = (ReferenceEquals(limit, refusedBy) || (refusedBy is null && remaining == 0)) && retryAfter is { } after
                ? after
                : (statistics as RateLimitStatistics)?.ResetAfter;
            if (reset is { } t)
            {
                state.Append(";t=").Append(Math.Max(0, (long)Math.Ceiling(t.TotalSeconds)).ToString(CultureInfo.InvariantCulture));
            }
        }

        if (policy.Length > 0)
        {
            context.Response.Headers["RateLimit-Policy"] = policy.ToString();
            context.Response.Headers["RateLimit"] = state.ToString();
        }
    }

    public static string Seconds(TimeSpan span) =>
        Math.Max(1, (long)Math.Ceiling(span.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
}
