using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.RateLimits;

/// <summary>
/// Turns the configured policies into partitioned limiters (System.Threading.RateLimiting), one per configured limit,
/// whose partitions come from the configured <see cref="IRateLimitStore"/>. Each only counts requests whose endpoint
/// carries its policy (declared in code with RequireRateLimiting, or attached by <c>RateLimits:Routes</c>).
/// Limits run in two phases: those keyed by client IP, route or nothing run before authentication (a flood of bad
/// tokens is counted and refused before any token is checked), those keyed by user or client id after it.
/// </summary>
public sealed partial class RateLimitRegistry : IDisposable
{
    /// <summary>A limit as built, with what the RateLimit-Policy header says about it.</summary>
    public sealed record Limit(string Policy, string Name, RateLimitAlgorithm Algorithm, PartitionParts Parts, int Quota, TimeSpan? Window, PartitionedRateLimiter<HttpContext> Limiter)
    {
        /// <summary>Counted before authentication: its key needs no user (client IP, route, or one bucket).</summary>
        public bool BeforeAuthentication => (Parts & (PartitionParts.User | PartitionParts.ClientId)) == 0;

        /// <summary>May wait in a queue instead of failing at once.</summary>
        internal bool Queues { get; init; }

        /// <summary>Acquisition order within a phase: shortest horizon first, so a refusal spends no longer budget.</summary>
        internal TimeSpan Horizon { get; init; }
    }

    private readonly Dictionary<string, Limit[]> _byPolicy = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<RateLimitRouteOptions> _routes;
    // Weak keys: the gateway builds new endpoint objects on every routes reload; the old ones must not be kept alive.
    private readonly ConditionalWeakTable<Endpoint, Phases> _endpointLimits = new();
    private readonly ConditionalWeakTable<Endpoint, Phases>.CreateValueCallback _forEndpoint;
    private readonly Phases _unmatched;
    private readonly Limit _global;
    private readonly IRateLimitStore _store;
    private readonly ILogger<RateLimitRegistry> _logger;
    private readonly List<PartitionedRateLimiter<HttpContext>> _limiters = [];
    private long _rejections;

    /// <summary>The limits applying to one endpoint: all (header order), and each phase in acquisition order.</summary>
    private sealed record Phases(Limit[] All, Limit[] Early, Limit[] Late);

    public RateLimitRegistry(IOptions<RateLimitOptions> options, ILogger<RateLimitRegistry> logger)
        : this(options, logger, new InProcessRateLimitStore())
    {
    }

    [ActivatorUtilitiesConstructor]
    public RateLimitRegistry(IOptions<RateLimitOptions> options, ILogger<RateLimitRegistry> logger, IRateLimitStore store)
    {
        _logger = logger;
        _store = store;
        _forEndpoint = ForEndpoint;
        var value = options.Value;
        _routes = value.Routes;
        var policies = new Dictionary<string, RateLimitPolicyOptions>(Defaults(), StringComparer.OrdinalIgnoreCase);
        foreach (var (name, policy) in value.Policies)
        {
            policies[name] = policy; // configured replaces the default entirely
        }

        // Health is not counted, so it answers however many slow requests are in flight. Process-wide, never shared.
        var globalLimit = value.GlobalConcurrencyLimit;
        var global = PartitionedRateLimiter.Create<HttpContext, string>(context => IsHealth(context)
            ? RateLimitPartition.GetNoLimiter("health")
            : RateLimitPartition.GetConcurrencyLimiter("global", _ => new ConcurrencyLimiterOptions { PermitLimit = globalLimit, QueueLimit = 0 }));
        _limiters.Add(global);
        _global = new Limit("global", "global", RateLimitAlgorithm.Concurrency, PartitionParts.None, globalLimit, null, global) { Horizon = TimeSpan.Zero };

        foreach (var (name, policy) in policies)
        {
            var rules = policy.AllLimits().ToList();
            var built = new Limit[rules.Count];
            for (var i = 0; i < rules.Count; i++)
            {
                built[i] = Build(name, rules.Count == 1 ? name : $"{name}-{i + 1}", rules[i]);
                _limiters.Add(built[i].Limiter);
            }

            _byPolicy[name] = built;
        }

        _unmatched = Split(_byPolicy[RateLimitPolicies.Anonymous]);
    }

    public IReadOnlyCollection<string> PolicyNames => _byPolicy.Keys;

    /// <summary>Requests refused since start.</summary>
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
            // Per IP as well, counted before authentication: a flood of bad tokens is refused 429 before any
            // token is checked. Generous, so many users behind one NAT address are not held back.
            Limits =
            [
                new() { Algorithm = nameof(RateLimitAlgorithm.TokenBucket), TokenLimit = 1000, TokensPerPeriod = 100, ReplenishmentPeriod = TimeSpan.FromSeconds(1), PartitionBy = nameof(PartitionParts.ClientIp) },
            ],
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

        var definition = new RateLimitDefinition(
            policy,
            name,
            algorithm,
            algorithm == RateLimitAlgorithm.TokenBucket ? rule.TokenLimit!.Value : rule.PermitLimit!.Value,
            rule.Window,
            rule.SegmentsPerWindow ?? 4,
            rule.TokensPerPeriod ?? 0,
            rule.ReplenishmentPeriod,
            rule.QueueLimit);

        var (quota, window) = algorithm switch
        {
            RateLimitAlgorithm.TokenBucket => (rule.TokenLimit!.Value,
                (TimeSpan?)(rule.ReplenishmentPeriod!.Value * Math.Ceiling((double)rule.TokenLimit.Value / rule.TokensPerPeriod!.Value))),
            RateLimitAlgorithm.Concurrency => (rule.PermitLimit!.Value, null),
            _ => (rule.PermitLimit!.Value, rule.Window),
        };

        var store = _store;
        Limit? self = null;
        var limiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            Applies(Applying(context), self!)
                ? RateLimitPartition.Get(PartitionKey(context, parts), key => store.Create(definition, key))
                : RateLimitPartition.GetNoLimiter(string.Empty));
        self = new Limit(policy, name, algorithm, parts, quota, window, limiter)
        {
            Queues = rule.QueueLimit > 0,
            // Concurrency permits come back when the request ends: last, whatever their order.
            Horizon = window ?? TimeSpan.MaxValue,
        };
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
    public Limit[] Applying(HttpContext context) => Resolve(context).All;

    private Phases Resolve(HttpContext context)
    {
        if (context.Items[ItemKey] is Phases cached)
        {
            return cached;
        }

        var endpoint = context.GetEndpoint();
        var limits = endpoint is null ? _unmatched : _endpointLimits.GetValue(endpoint, _forEndpoint);
        context.Items[ItemKey] = limits;
        return limits;
    }

    private Phases ForEndpoint(Endpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<DisableRateLimitingAttribute>() is not null)
        {
            return Split([]);
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

        return Split([.. names.Distinct(StringComparer.OrdinalIgnoreCase).SelectMany(n => _byPolicy.TryGetValue(n, out var l) ? l : [])]);
    }

    private Phases Split(Limit[] all) => new(
        all,
        [_global, .. all.Where(l => l.BeforeAuthentication).OrderBy(l => l.Horizon)],
        [.. all.Where(l => !l.BeforeAuthentication).OrderBy(l => l.Horizon)]);

    private static string? Normalize(string? pattern) => pattern is null ? null : "/" + pattern.Trim().Trim('/');

    private static bool IsHealth(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase);

    /// <summary>Counts, logs and audits a refusal, naming the limit that refused (or every applying one).</summary>
    internal void Rejected(HttpContext context, Limit? refusedBy = null)
    {
        Interlocked.Increment(ref _rejections);
        var route = context.GetEndpoint() is RouteEndpoint endpoint ? endpoint.RoutePattern.RawText ?? "" : "(unmatched)";
        var policies = refusedBy?.Name ?? string.Join(',', Applying(context).Select(l => l.Name));
        LogRejected(_logger, route, policies, ClientAddress(context));
        context.RequestServices.GetService<Audit.RejectionAggregator>()?.Rejected(route, policies, ClientAddress(context));
    }

    [LoggerMessage(EventId = EventIds.RateLimits.RateLimitExceeded, EventName = "excess_rate_limit_exceeded", Level = LogLevel.Warning,
        Message = "excess_rate_limit_exceeded: route {Route}, policies {Policies}, client {ClientIp}.")]
    private static partial void LogRejected(ILogger logger, string route, string policies, string clientIp);

    public void Dispose()
    {
        foreach (var limiter in _limiters)
        {
            limiter.Dispose();
        }
    }
}
