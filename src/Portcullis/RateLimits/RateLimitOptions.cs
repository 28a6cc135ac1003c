using System.Globalization;
using System.Net;
using Microsoft.Extensions.Options;

namespace Portcullis.RateLimits;

/// <summary>Rate limits. Section <c>RateLimits</c>; see docs/rate-limits.md.</summary>
public sealed class RateLimitOptions
{
    public const string Section = "RateLimits";

    /// <summary>Named policies. A reserved name configured here replaces its built-in default entirely.</summary>
    public Dictionary<string, RateLimitPolicyOptions> Policies { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Policies attached to endpoints by route pattern or endpoint name, without code.</summary>
    public List<RateLimitRouteOptions> Routes { get; set; } = [];

    /// <summary>Requests in flight at once, everything but <c>/health</c> counted; more get 429 at once. Default 512.</summary>
    public int GlobalConcurrencyLimit { get; set; } = 512;

    /// <summary>Where counters live: <c>InProcess</c> (the default and, in this version, the only store).</summary>
    public string Store { get; set; } = InProcessRateLimitStore.Name;
}

/// <summary>One limit: an algorithm from System.Threading.RateLimiting and what partitions it.</summary>
public class RateLimitRuleOptions
{
    /// <summary><c>FixedWindow</c>, <c>SlidingWindow</c>, <c>TokenBucket</c> or <c>Concurrency</c>.</summary>
    public string? Algorithm { get; set; }

    /// <summary>Requests per window (FixedWindow, SlidingWindow) or in flight (Concurrency).</summary>
    public int? PermitLimit { get; set; }

    /// <summary>Bucket size (TokenBucket).</summary>
    public int? TokenLimit { get; set; }

    public TimeSpan? Window { get; set; }

    /// <summary>SlidingWindow segments; default 4.</summary>
    public int? SegmentsPerWindow { get; set; }

    public TimeSpan? ReplenishmentPeriod { get; set; }

    public int? TokensPerPeriod { get; set; }

    /// <summary>Requests that wait for a permit instead of failing at once. Default 0.</summary>
    public int QueueLimit { get; set; }

    /// <summary>Any of <c>ClientIp</c>, <c>User</c>, <c>ClientId</c>, <c>Route</c>, comma-separated. Empty: one bucket for all.</summary>
    public string? PartitionBy { get; set; }
}

/// <summary>A named policy: its own limit, and/or several in <see cref="Limits"/>. Every one must admit.</summary>
public sealed class RateLimitPolicyOptions : RateLimitRuleOptions
{
    public List<RateLimitRuleOptions> Limits { get; set; } = [];

    internal IEnumerable<RateLimitRuleOptions> AllLimits() => Algorithm is null ? Limits : [this, .. Limits];
}

public sealed class RateLimitRouteOptions
{
    /// <summary>A route pattern as mapped (<c>/api/accounts/me</c>, case-insensitive) or an endpoint name.</summary>
    public string? Route { get; set; }

    /// <summary>Policy names; comma-separated.</summary>
    public string? Policies { get; set; }

    internal string[] PolicyNames() =>
        (Policies ?? "").Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

public enum RateLimitAlgorithm
{
    FixedWindow,
    SlidingWindow,
    TokenBucket,
    Concurrency,
}

[Flags]
public enum PartitionParts
{
    None = 0,
    ClientIp = 1,
    User = 2,
    ClientId = 4,
    Route = 8,
}

/// <summary>Every problem in the RateLimits section at once, so one start-up attempt shows all that needs fixing.</summary>
public sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public ValidateOptionsResult Validate(string? name, RateLimitOptions options)
    {
        var failures = new List<string>();
        foreach (var (policy, value) in options.Policies)
        {
            var prefix = $"RateLimits:Policies:{policy}";
            var limits = value.AllLimits().ToList();
            if (limits.Count == 0)
            {
                failures.Add($"{prefix} has no limit: set Algorithm (and its settings) or Limits:0:Algorithm.");
            }

            var index = 0;
            foreach (var limit in value.AllLimits())
            {
                var at = ReferenceEquals(limit, value) ? prefix : $"{prefix}:Limits:{index++}";
                Check(at, limit, failures);
            }
        }

        for (var i = 0; i < options.Routes.Count; i++)
        {
            var route = options.Routes[i];
            var at = $"RateLimits:Routes:{i}";
            if (string.IsNullOrWhiteSpace(route.Route))
            {
                failures.Add($"{at}:Route must name a route pattern or endpoint.");
            }

            var names = route.PolicyNames();
            if (names.Length == 0)
            {
                failures.Add($"{at}:Policies must name at least one policy.");
            }

            foreach (var policy in names.Where(p => !options.Policies.ContainsKey(p) && !RateLimitPolicies.All.Contains(p, StringComparer.OrdinalIgnoreCase)))
            {
                failures.Add($"{at}:Policies names unknown policy '{policy}'.");
            }
        }

        if (options.GlobalConcurrencyLimit <= 0)
        {
            failures.Add("RateLimits:GlobalConcurrencyLimit must be positive.");
        }

        if (!string.Equals(options.Store, InProcessRateLimitStore.Name, StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"RateLimits:Store '{options.Store}' is unknown: use InProcess (a shared Redis store is not part of this version; see docs/rate-limits.md).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Check(string at, RateLimitRuleOptions limit, List<string> failures)
    {
        if (!TryParseAlgorithm(limit.Algorithm, out var algorithm))
        {
            failures.Add($"{at}:Algorithm '{limit.Algorithm}' is unknown: use FixedWindow, SlidingWindow, TokenBucket or Concurrency.");
        }
        else
        {
            switch (algorithm)
            {
                case RateLimitAlgorithm.FixedWindow or RateLimitAlgorithm.SlidingWindow:
                    Positive(limit.PermitLimit, $"{at}:PermitLimit", failures);
                    Positive(limit.Window, $"{at}:Window", failures);
                    if (algorithm == RateLimitAlgorithm.SlidingWindow && limit.SegmentsPerWindow is <= 0)
                    {
                        failures.Add($"{at}:SegmentsPerWindow must be positive.");
                    }

                    break;
                case RateLimitAlgorithm.TokenBucket:
                    Positive(limit.TokenLimit, $"{at}:TokenLimit", failures);
                    Positive(limit.TokensPerPeriod, $"{at}:TokensPerPeriod", failures);
                    Positive(limit.ReplenishmentPeriod, $"{at}:ReplenishmentPeriod", failures);
                    break;
                case RateLimitAlgorithm.Concurrency:
                    Positive(limit.PermitLimit, $"{at}:PermitLimit", failures);
                    break;
            }
        }

        if (limit.QueueLimit < 0)
        {
            failures.Add($"{at}:QueueLimit must not be negative.");
        }

        if (!TryParseParts(limit.PartitionBy, out _))
        {
            failures.Add($"{at}:PartitionBy '{limit.PartitionBy}' is not a combination of ClientIp, User, ClientId and Route.");
        }
    }

    private static void Positive(int? value, string key, List<string> failures)
    {
        if (value is not > 0)
        {
            failures.Add(value is null ? $"{key} is required." : $"{key} must be positive (is {value.Value.ToString(CultureInfo.InvariantCulture)}).");
        }
    }

    private static void Positive(TimeSpan? value, string key, List<string> failures)
    {
        if (value is not { } span || span <= TimeSpan.Zero)
        {
            failures.Add(value is null ? $"{key} is required." : $"{key} must be longer than zero (is {value.Value.ToString("c", CultureInfo.InvariantCulture)}).");
        }
    }

    internal static bool TryParseAlgorithm(string? value, out RateLimitAlgorithm algorithm) =>
        Enum.TryParse(value, ignoreCase: true, out algorithm) && Enum.IsDefined(algorithm) && !int.TryParse(value, out _);

    internal static bool TryParseParts(string? value, out PartitionParts parts)
    {
        parts = PartitionParts.None;
        foreach (var part in (value ?? "").Split([',', '+', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Enum.TryParse<PartitionParts>(part, ignoreCase: true, out var one) || one == PartitionParts.None || !Enum.IsDefined(one) || int.TryParse(part, out _))
            {
                return false;
            }

            parts |= one;
        }

        return true;
    }
}
