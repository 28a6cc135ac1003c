using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using System.Threading.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.RateLimits;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.RateLimits;

/// <summary>
/// RATE: per-IP limits run before authentication and per-user limits after it; a refused request spends no other
/// limit's permit; the RateLimit fields (with <c>t</c>) on admitted and refused answers.
/// </summary>
public sealed partial class RateLimitPhaseTests
{
    private static Task<PortcullisServer> StartAsync(params (string Key, string? Value)[] settings) =>
        PortcullisServer.StartAsync(settings.ToDictionary(s => s.Key, s => s.Value));

    private static (string, string?)[] Limit(string prefix, string algorithm, int limit, string window, string partitionBy)
    {
        var count = limit.ToString(CultureInfo.InvariantCulture);
        return algorithm switch
        {
            "TokenBucket" =>
            [
                ($"{prefix}:Algorithm", algorithm), ($"{prefix}:TokenLimit", count), ($"{prefix}:TokensPerPeriod", "1"),
                ($"{prefix}:ReplenishmentPeriod", window), ($"{prefix}:PartitionBy", partitionBy),
            ],
            _ =>
            [
                ($"{prefix}:Algorithm", algorithm), ($"{prefix}:PermitLimit", count), ($"{prefix}:Window", window),
                ($"{prefix}:PartitionBy", partitionBy),
            ],
        };
    }

    /// <summary>A structured-field list of <c>"name";r=N;t=N</c> items (draft-ietf-httpapi-ratelimit-headers).</summary>
    [GeneratedRegex("""^"[a-z0-9-]+";r=\d+(;t=\d+)?(, "[a-z0-9-]+";r=\d+(;t=\d+)?)*$""")]
    private static partial Regex RateLimitField();

    [GeneratedRegex("""^"[a-z0-9-]+";q=\d+(;w=\d+)?(, "[a-z0-9-]+";q=\d+(;w=\d+)?)*$""")]
    private static partial Regex RateLimitPolicyField();

    private static string Item(HttpResponseMessage response, string field, string name)
    {
        var value = Assert.Single(response.Headers.GetValues(field));
        return Assert.Single(value.Split(", "), i => i.StartsWith($"\"{name}\";", StringComparison.Ordinal));
    }

    private static int T(string item) => int.Parse(Regex.Match(item, ";t=(\\d+)").Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public async Task R07_a_flood_of_invalid_tokens_from_one_IP_is_refused_429_before_authentication_not_endless_401()
    {
        await using var server = await StartAsync(Limit("RateLimits:Policies:authenticated", "FixedWindow", 3, "00:05:00", "ClientIp"));
        using var http = server.CreateClient();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await http.GetWithTokenAsync("api/me", "eyJhbGciOiJSUzI1NiJ9.bm90IGEgdG9rZW4.c2lnbmF0dXJl");
            statuses.Add(response.StatusCode);
            Assert.Equal("\"authenticated\";q=3;w=300", Assert.Single(response.Headers.GetValues("RateLimit-Policy")));
            var state = Assert.Single(response.Headers.GetValues("RateLimit"));
            Assert.Matches(RateLimitField(), state);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                Assert.Matches($"^\"authenticated\";r={2 - i};t=\\d+$", state); // counted, though the token is worthless
            }
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Contains("too-many-requests", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                var retry = (int)response.Headers.RetryAfter!.Delta!.Value.TotalSeconds;
                Assert.InRange(retry, 1, 300);
                Assert.Equal($"\"authenticated\";r=0;t={retry}", state);
                // Refused before authentication: no challenge was computed for it.
                Assert.Empty(response.Headers.WwwAuthenticate);
            }
        }

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized], statuses[..3]);
        Assert.All(statuses[3..], s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        Assert.True(server.Services.GetRequiredService<RateLimitRegistry>().Rejections >= 5);

        // Refused before authentication, and still one request log line each (issue 4): method, route, status.
        var lines = server.Logs.Text.Split('\n').Where(l => l.Contains("\"EventId\":1100", StringComparison.Ordinal)
            && l.Contains("GET /api/me", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, lines.Count(l => l.Contains("GET /api/me 401", StringComparison.Ordinal)));
        Assert.Equal(5, lines.Count(l => l.Contains("GET /api/me 429", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task R01_per_user_limits_count_after_authentication_per_IP_ones_before_and_headers_show_what_was_counted()
    {
        await using var server = await StartAsync(
        [
            .. Limit("RateLimits:Policies:authenticated", "FixedWindow", 2, "00:05:00", "User"),
            .. Limit("RateLimits:Policies:authenticated:Limits:0", "FixedWindow", 100, "00:05:00", "ClientIp"),
        ]);
        using var http = server.CreateClient();
        var alice = await http.NewUserAsync("alice");
        var bob = await http.NewUserAsync("bob");

        for (var i = 0; i < 2; i++)
        {
            using var admitted = await http.GetWithTokenAsync("api/me", alice.Tokens.AccessToken);
            Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
            Assert.Equal("\"authenticated-1\";q=2;w=300, \"authenticated-2\";q=100;w=300", Assert.Single(admitted.Headers.GetValues("RateLimit-Policy")));
            Assert.Matches(RateLimitField(), Assert.Single(admitted.Headers.GetValues("RateLimit")));
            Assert.Matches($"^\"authenticated-1\";r={1 - i};t=\\d+$", Item(admitted, "RateLimit", "authenticated-1"));
            Assert.Matches($"^\"authenticated-2\";r={99 - i};t=\\d+$", Item(admitted, "RateLimit", "authenticated-2"));
        }

        using (var refused = await http.GetWithTokenAsync("api/me", alice.Tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            var retry = (int)refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds;
            Assert.Equal($"\"authenticated-1\";r=0;t={retry}", Item(refused, "RateLimit", "authenticated-1"));
            // The per-IP permit was taken before authentication: the IP did send the request.
            Assert.StartsWith("\"authenticated-2\";r=97;", Item(refused, "RateLimit", "authenticated-2"), StringComparison.Ordinal);
        }

        using (var other = await http.GetWithTokenAsync("api/me", bob.Tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, other.StatusCode); // same IP, other user
            Assert.StartsWith("\"authenticated-1\";r=1;", Item(other, "RateLimit", "authenticated-1"), StringComparison.Ordinal);
        }

        // A bad token is answered 401 after the per-IP phase only: its fields name only the per-IP limit.
        using var anonymous = await http.GetWithTokenAsync("api/me", "not-a-token");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("\"authenticated-2\";q=100;w=300", Assert.Single(anonymous.Headers.GetValues("RateLimit-Policy")));
        Assert.Matches("""^"authenticated-2";r=95;t=\d+$""", Assert.Single(anonymous.Headers.GetValues("RateLimit")));
    }

    [Fact]
    public async Task R08_a_request_one_limit_refuses_spends_no_permit_of_the_others_in_either_order()
    {
        await using var server = await StartAsync(
        [
            // 5 per 10 minutes AND 100 per day, the day listed first.
            .. Limit("RateLimits:Policies:burst:Limits:0", "FixedWindow", 100, "1.00:00:00", "ClientIp"),
            .. Limit("RateLimits:Policies:burst:Limits:1", "FixedWindow", 2, "00:10:00", "ClientIp"),
            ("RateLimits:Routes:0:Route", "/health/live"),
            ("RateLimits:Routes:0:Policies", "burst"),
            // 5 per 10 minutes AND 2 per day: the day refuses, the short window (acquired first) must not pay.
            .. Limit("RateLimits:Policies:daily:Limits:0", "FixedWindow", 5, "00:10:00", "ClientIp"),
            .. Limit("RateLimits:Policies:daily:Limits:1", "FixedWindow", 2, "1.00:00:00", "ClientIp"),
            ("RateLimits:Routes:1:Route", "/health/ready"),
            ("RateLimits:Routes:1:Policies", "daily"),
        ]);
        using var http = server.CreateClient();

        async Task<List<HttpResponseMessage>> Send(string path)
        {
            var responses = new List<HttpResponseMessage>();
            for (var i = 0; i < 5; i++)
            {
                responses.Add(await http.GetAsync(path));
            }

            return responses;
        }

        var live = await Send("health/live");
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], live.Select(r => r.StatusCode));
        Assert.StartsWith("\"burst-1\";r=98;", Item(live[^1], "RateLimit", "burst-1"), StringComparison.Ordinal); // the day budget: 2 used, not 5
        Assert.StartsWith("\"burst-2\";r=0;", Item(live[^1], "RateLimit", "burst-2"), StringComparison.Ordinal);

        var ready = await Send("health/ready");
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], ready.Select(r => r.StatusCode));
        Assert.StartsWith("\"daily-1\";r=3;", Item(ready[^1], "RateLimit", "daily-1"), StringComparison.Ordinal); // 2 used, not 5
        Assert.StartsWith("\"daily-2\";r=0;", Item(ready[^1], "RateLimit", "daily-2"), StringComparison.Ordinal);
        Assert.InRange(ready[^1].Headers.RetryAfter!.Delta!.Value.TotalHours, 1, 24);

        foreach (var response in live.Concat(ready))
        {
            response.Dispose();
        }
    }

    [Fact]
    public void The_library_chained_limiter_spends_earlier_window_permits_when_a_later_limit_refuses()
    {
        // Why the registry does not use PartitionedRateLimiter.CreateChained: this is its documented behaviour.
        using var day = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions { PermitLimit = 100, Window = TimeSpan.FromDays(1) }));
        using var minute = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions { PermitLimit = 2, Window = TimeSpan.FromMinutes(1) }));
        using var chained = PartitionedRateLimiter.CreateChained(day, minute);

        var admitted = 0;
        for (var i = 0; i < 5; i++)
        {
            using var lease = chained.AttemptAcquire("client");
            admitted += lease.IsAcquired ? 1 : 0;
        }

        Assert.Equal(2, admitted);
        Assert.Equal(95, day.GetStatistics("client")!.CurrentAvailablePermits); // 3 refused requests paid the daily budget
    }

    [Fact]
    public async Task R09_RateLimit_fields_are_structured_lists_with_t_for_every_window_algorithm()
    {
        await using var server = await StartAsync(
        [
            .. Limit("RateLimits:Policies:anonymous", "TokenBucket", 3, "00:00:20", "ClientIp"),
            .. Limit("RateLimits:Policies:fixed", "FixedWindow", 2, "00:01:00", "ClientIp"),
            .. Limit("RateLimits:Policies:sliding", "SlidingWindow", 2, "00:01:00", "ClientIp"),
            ("RateLimits:Routes:0:Route", "/health/live"),
            ("RateLimits:Routes:0:Policies", "fixed, sliding"),
        ]);
        using var http = server.CreateClient();

        using (var first = await http.GetAsync("health/live"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Matches(RateLimitPolicyField(), Assert.Single(first.Headers.GetValues("RateLimit-Policy")));
            Assert.Equal("\"anonymous\";q=3;w=60, \"fixed\";q=2;w=60, \"sliding\";q=2;w=60", Assert.Single(first.Headers.GetValues("RateLimit-Policy")));
            Assert.Matches(RateLimitField(), Assert.Single(first.Headers.GetValues("RateLimit")));
            // One token short: back within one 20 s period; the windows end within their minute.
            Assert.InRange(T(Item(first, "RateLimit", "anonymous")), 1, 20);
            Assert.InRange(T(Item(first, "RateLimit", "fixed")), 1, 60);
            Assert.InRange(T(Item(first, "RateLimit", "sliding")), 1, 60);
            Assert.StartsWith("\"fixed\";r=1;", Item(first, "RateLimit", "fixed"), StringComparison.Ordinal);
        }

        using (var second = await http.GetAsync("health/live"))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.InRange(T(Item(second, "RateLimit", "anonymous")), 21, 40); // two tokens short: two periods at most
            Assert.StartsWith("\"fixed\";r=0;t=", Item(second, "RateLimit", "fixed"), StringComparison.Ordinal);
        }

        using var refused = await http.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Matches(RateLimitField(), Assert.Single(refused.Headers.GetValues("RateLimit")));
        Assert.Matches(RateLimitPolicyField(), Assert.Single(refused.Headers.GetValues("RateLimit-Policy")));
        var retry = (int)refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds;
        Assert.Equal($"\"fixed\";r=0;t={retry}", Item(refused, "RateLimit", "fixed"));
    }

    private sealed class RecordingStore : IRateLimitStore
    {
        private readonly InProcessRateLimitStore _inner = new();

        public System.Collections.Concurrent.ConcurrentQueue<string> Created { get; } = new();

        public RateLimiter Create(RateLimitDefinition limit, string partitionKey)
        {
            Created.Enqueue($"{limit.Name} {limit.Algorithm} {partitionKey}");
            return _inner.Create(limit, partitionKey);
        }
    }

    [Fact]
    public async Task The_counter_store_is_one_seam_every_partition_comes_from()
    {
        var store = new RecordingStore();
        await using var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?>(Limit("RateLimits:Policies:anonymous", "FixedWindow", 2, "00:05:00", "ClientIp").Select(p => KeyValuePair.Create(p.Item1, p.Item2))),
            services => services.AddSingleton<IRateLimitStore>(store));
        using var http = server.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var response = await http.GetAsync("health/live");
            Assert.Equal(i < 2 ? HttpStatusCode.OK : HttpStatusCode.TooManyRequests, response.StatusCode);
        }

        Assert.Equal(["anonymous FixedWindow ip:127.0.0.1|"], store.Created.Distinct()); // one partition, made once
        Assert.Single(store.Created);
    }

    [Fact]
    public void R07_the_default_authenticated_policy_also_limits_per_IP_before_authentication()
    {
        var policy = RateLimitRegistry.Defaults()[RateLimitPolicies.Authenticated];
        Assert.Equal("User", policy.PartitionBy);
        var perIp = Assert.Single(policy.Limits);
        Assert.Equal("ClientIp", perIp.PartitionBy);

        using var registry = new RateLimitRegistry(
            Microsoft.Extensions.Options.Options.Create(new RateLimitOptions()),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<RateLimitRegistry>.Instance);
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        var endpoint = new Microsoft.AspNetCore.Http.Endpoint(null, new Microsoft.AspNetCore.Http.EndpointMetadataCollection(new Microsoft.AspNetCore.RateLimiting.EnableRateLimitingAttribute(RateLimitPolicies.Authenticated)), "api");
        Microsoft.AspNetCore.Http.EndpointHttpContextExtensions.SetEndpoint(context, endpoint);
        var limits = registry.Applying(context);
        Assert.Equal(["authenticated-1", "authenticated-2"], limits.Select(l => l.Name));
        Assert.Equal([false, true], limits.Select(l => l.BeforeAuthentication));
    }
}
