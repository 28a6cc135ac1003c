using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Portcullis.RateLimits;

/// <summary>
/// Turns the configured policies into one chained <see cref="PartitionedRateLimiter{HttpContext}"/> (the library's
/// CreateChained: every limit must admit). Each limit is its own partitioned limiter that only counts requests
/// whose endpoint carries its policy (declared in code with RequireRateLimiting, or attached by
/// <c>RateLimits:Routes</c>); for all others it hands out the library's no-limit partition. The algorithms,
/// queueing and idle-partition eviction are all System.Threading.RateLimiting's.
/// </summary>
public sealed partial class RateLimitRegistry : IDisposable
{
    /// <summary>A limit as built, with what the RateLimit-Policy header says about it.</summary>
    public sealed record Limit(string Policy, string Name, RateLimitAlgorithm Algorithm, PartitionParts Parts, int Quota, TimeSpan? Window, PartitionedRateLimiter<HttpContext> Limiter);

    private readonly Dictionary<string, Limit[]> _byPolicy = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<RateLimitRouteOptions> _routes;
    private readonly ConcurrentDictionary<Endpoint, Limit[]> _endpointLimits = new();
    private readonly Limit[] _unmatched;
    private readonly PartitionedRateLimiter<HttpContext> _global;
    private readonly ILogger<RateLimitRegistry> _logger;
    private readonly List<PartitionedRateLimiter<HttpContext>> _limiters = [];
    private long _rejections;

    public RateLimitRegistry(IOptions<RateLimitOptions> options, ILogger<RateLimitRegistry> logger)
    {
        _logger = logger;
        var value = options.Value;
        _routes = value.Routes;
        var policies = new Dictionary<string, RateLimitPolicyOptions>(Defaults(), StringComparer.OrdinalIgnoreCase);
        foreach (var (name, policy) in value.Policies)
        {
            policies[name] = policy; // configured replaces the default entirely
        }

        var limiters = _limiters;
        var globalLimit = value.GlobalConcurrencyLimit;
        // Health is not counted, so it answers however many slow requests are in flight.
        _global = PartitionedRateLimiter.Create<HttpContext, string>(context => IsHealth(context)
            ? RateLimitPartition.GetNoLimiter("health")
            : RateLimitPartition.GetConcurrencyLimiter("global", _ => new ConcurrencyLimiterOptions { PermitLimit = globalLimit, QueueLimit = 0 }));
        limiters.Add(_global);

        foreach (var (name, policy) in policies)
        {
            var rules = policy.AllLimits().ToList();
            var built = new Limit[rules.Count];
            for (var i = 0; i < rules.Count; i++)
            {
                built[i] = Build(name, rules.Count == 1 ? name : $"{name}-{i + 1}", rules[i]);
                limiters.Add(built[i].Limiter);
            }

            _byPolicy[name] = built;
        }

        _unmatched = _byPolicy[RateLimitPolicies.Anonymous];
        Limiter = PartitionedRateLimiter.CreateChained([.. limiters]);
    }

    /// <summary>The limiter the framework's middleware runs for every request (RateLimiterOptions.GlobalLimiter).</summary>
    public PartitionedRateLimiter<HttpContext> Limiter { get; }

    public IReadOnlyCollection<string> PolicyNames => _byPolicy.Keys;

    /// <summary>Requests refused since start (metrics come with the audit work).</summary>
    public long Rejections => Interlocked.Read(ref _rejections);

    /// <summary>The built-in policies, used for any reserved name the configuration does not set.</summary>
    public static Dictionary<string, RateLimitPolicyOptions> Defaults() => new(StringComparer.OrdinalIgnoreCase)
    {
        // Per account is LoginThrottle's job; this caps one IP across every credential endpoint.
        [RateLimitPolicies.Credentials] = new()
        {
            Algorithm = nameof(RateLimitAlgorithm.SlidingWindow), PermitLimit = 20, Window = TimeSpan.FromMinutes(1), SegmentsPerWindow = 6, PartitionBy = nameof(PartitionParts.ClientIp),
        },
        [RateLimitPolicies.Authenticated] = new()
        {
            Algorithm = nameof(RateLimitAlgorithm.TokenBucket), TokenLimit = 100, TokensPerPeriod = 10, ReplenishmentPeriod = TimeSpan.FromSeconds(1), PartitionBy = nameof(PartitionParts.User),
        },
        [RateLimitPolicies.Anonymous] = new()
        {
            Algorithm = nameof(RateLimitAlgorithm.TokenBucket), TokenLimit = 100, TokensPerPeriod = 5, ReplenishmentPeriod = TimeSpan.FromSeconds(1), PartitionBy = nameof(PartitionParts.ClientIp),
        },
    };

    private Limit Build(string policy, string name, RateLimitRuleOptions rule)
    {
        if (!RateLimitOptionsValidator.TryParseAlgorithm(rule.Algorithm, out var algorithm) || !RateLimitOptionsValidator.TryParseParts(rule.PartitionBy, out var parts))
        {
            throw new InvalidOperationException($"Rate-limit policy '{policy}' is invalid; the options validator reports why.");
        }

        var queue = rule.QueueLimit;
        Func<string, RateLimitPartition<string>> partition = algorithm switch
        {
            RateLimitAlgorithm.FixedWindow => key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = rule.PermitLimit!.Value, Window = rule.Window!.Value, QueueLimit = queue, AutoReplenishment = true,
            }),
            RateLimitAlgorithm.SlidingWindow => key => RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
            {
                PermitLimit = rule.PermitLimit!.Value, Window = rule.Window!.Value, SegmentsPerWindow = rule.SegmentsPerWindow ?? 4, QueueLimit = queue, AutoReplenishment = true,
            }),
            RateLimitAlgorithm.TokenBucket => key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = rule.TokenLimit!.Value, TokensPerPeriod = rule.TokensPerPeriod!.Value, ReplenishmentPeriod = rule.ReplenishmentPeriod!.Value, QueueLimit = queue, AutoReplenishment = true,
            }),
            _ => key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions { PermitLimit = rule.PermitLimit!.Value, QueueLimit = queue }),
        };

        var (quota, window) = algorithm switch
        {
            RateLimitAlgorithm.TokenBucket => (rule.TokenLimit!.Value,
                (TimeSpan?)(rule.ReplenishmentPeriod!.Value * Math.Ceiling((double)rule.TokenLimit.Value / rule.TokensPerPeriod!.Value))),
            RateLimitAlgorithm.Concurrency => (rule.PermitLimit!.Value, null),
            _ => (rule.PermitLimit!.Value, rule.Window),
        };

        Limit? self = null;
        var limiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            Applies(Applying(context), self!)
                ? partition(PartitionKey(context, parts))
                : RateLimitPartition.GetNoLimiter(string.Empty));
        self = new Limit(policy, name, algorithm, parts, quota, window, limiter);
        return self;
    }

    private static bool Applies(Limit[] applying, Limit limit)
    {
        foreach (var candidate in applying)
        {
            if (ReferenceEquals(candidate, limit))
            {
                return true;
            }
        }

        return false;
    }

    private const string ItemKey = "Portcullis.RateLimits.Applying";

    /// <summary>The limits that apply to this request, worked out once per endpoint and kept for the request.</summary>
    public Limit[] Applying(HttpContext context)
    {
        if (context.Items[ItemKey] is Limit[] cached)
        {
            return cached;
        }

        var endpoint = context.GetEndpoint();
        var limits = endpoint is null ? _unmatched : _endpointLimits.GetOrAdd(endpoint, ForEndpoint);
        context.Items[ItemKey] = limits;
        return limits;
    }

    private Limit[] ForEndpoint(Endpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<DisableRateLimitingAttribute>() is not null)
        {
            return [];
        }

        // Every declared policy applies (a group's and the endpoint's own): all must admit.
        var names = endpoint.Metadata.GetOrderedMetadata<EnableRateLimitingAttribute>().Select(a => a.PolicyName).OfType<string>().ToList();

        var pattern = Normalize((endpoint as RouteEndpoint)?.RoutePattern.RawText);
        var endpointName = endpoint.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
        foreach (var route in _routes)
        {
            var wanted = route.Route ?? "";
            if ((pattern is not null && string.Equals(Normalize(wanted), pattern, StringComparison.OrdinalIgnoreCase))
                || (endpointName is not null && string.Equals(wanted, endpointName, StringComparison.Ordinal)))
            {
                names.AddRange(route.PolicyNames());
            }
        }

        return [.. names.Distinct(StringComparer.OrdinalIgnoreCase).SelectMany(n => _byPolicy.TryGetValue(n, out var l) ? l : [])];
    }

    private static string? Normalize(string? pattern) => pattern is null ? null : "/" + pattern.Trim().Trim('/');

    private static bool IsHealth(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The partition key from the request as resolved by the server: the connection's address (after trusted-proxy
    /// processing only), the authenticated subject, the token's client, the matched route pattern — never the raw
    /// path, so case, slashes, encoding and query strings cannot open a fresh bucket.
    /// </summary>
    public static string PartitionKey(HttpContext context, PartitionParts parts)
    {
        if (parts == PartitionParts.None)
        {
            return "*";
        }

        var key = new StringBuilder();
        if (parts.HasFlag(PartitionParts.ClientIp))
        {
            key.Append("ip:").Append(ClientAddress(context)).Append('|');
        }

        if (parts.HasFlag(PartitionParts.User))
        {
            var subject = context.User.FindFirst("sub")?.Value;
            // Unauthenticated callers of a per-user policy are counted per IP, never in one shared bucket.
            key.Append(subject is null ? "anon-ip:" + ClientAddress(context) : "user:" + subject).Append('|');
        }

        if (parts.HasFlag(PartitionParts.ClientId))
        {
            key.Append("client:").Append(context.User.FindFirst("client_id")?.Value ?? context.User.FindFirst("azp")?.Value ?? "-").Append('|');
        }

        if (parts.HasFlag(PartitionParts.Route))
        {
            key.Append("route:").Append(context.GetEndpoint() is RouteEndpoint route ? route.RoutePattern.RawText : "(unmatched)").Append('|');
        }

        return key.ToString();
    }

    /// <summary>The client IP; IPv6 clients are counted per /64, the block one subscriber usually holds.</summary>
    public static string ClientAddress(HttpContext context)
    {
        var address = context.Connection.RemoteIpAddress;
        if (address is null)
        {
            return "-";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = address.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }

        return address.ToString();
    }

    /// <summary>
    /// IETF RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers, structured-field lists):
    /// <c>"authenticated";q=100;w=10</c> and <c>"authenticated";r=42</c>, with <c>t</c> when the reset is known.
    /// </summary>
    public void WriteHeaders(HttpContext context, TimeSpan? retryAfter)
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

            var available = limit.Limiter.GetStatistics(context)?.CurrentAvailablePermits ?? 0;
            var remaining = Math.Clamp(available, 0, limit.Quota);
            state.Append('"').Append(limit.Name).Append("\";r=").Append(remaining.ToString(CultureInfo.InvariantCulture));
            if (remaining == 0 && retryAfter is { } reset)
            {
                state.Append(";t=").Append(Seconds(reset));
            }
        }

        context.Response.Headers["RateLimit-Policy"] = policy.ToString();
        context.Response.Headers["RateLimit"] = state.ToString();
    }

    public static string Seconds(TimeSpan span) =>
        Math.Max(1, (long)Math.Ceiling(span.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    internal void Rejected(HttpContext context)
    {
        Interlocked.Increment(ref _rejections);
        var route = context.GetEndpoint() is RouteEndpoint endpoint ? endpoint.RoutePattern.RawText ?? "" : "(unmatched)";
        var policies = string.Join(',', Applying(context).Select(l => l.Name));
        LogRejected(_logger, route, policies, ClientAddress(context));
        context.RequestServices.GetService<Audit.RejectionAggregator>()?.Rejected(route, policies, ClientAddress(context));
    }

    [LoggerMessage(EventId = 5001, EventName = "excess_rate_limit_exceeded", Level = LogLevel.Warning,
        Message = "excess_rate_limit_exceeded: route {Route}, policies {Policies}, client {ClientIp}.")]
    private static partial void LogRejected(ILogger logger, string route, string policies, string clientIp);

    public void Dispose()
    {
        Limiter.Dispose();
        foreach (var limiter in _limiters)
        {
            limiter.Dispose();
        }
    }
}
