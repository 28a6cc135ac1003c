using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Portcullis.RateLimits;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.RateLimits;

/// <summary>RATE-01..04: configured policies, 429 with Retry-After and RateLimit headers, client IP, exactness.</summary>
public sealed partial class RateLimitTests
{
    private const string Live = "health/live";

    private static Task<PortcullisServer> StartAsync(params (string Key, string? Value)[] settings) =>
        PortcullisServer.StartAsync(settings.ToDictionary(s => s.Key, s => s.Value));

    private static (string, string?)[] Fixed(string policy, int limit, string window, string? partitionBy = "ClientIp") =>
    [
        ($"RateLimits:Policies:{policy}:Algorithm", "FixedWindow"),
        ($"RateLimits:Policies:{policy}:PermitLimit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ($"RateLimits:Policies:{policy}:Window", window),
        ($"RateLimits:Policies:{policy}:PartitionBy", partitionBy),
    ];

    [GeneratedRegex("""^"anonymous";q=3;w=3$""")]
    private static partial Regex AnonymousPolicy();

    [Fact]
    public async Task R01_over_the_limit_is_429_problem_with_Retry_After_and_the_next_window_admits_again()
    {
        // System.Threading.RateLimiting windows run on their own clock, which cannot be faked: a 3 s window, long
        // enough that a busy machine sends four requests inside one, and the test waits for the next window to admit
        // (polling) instead of sleeping a fixed time.
        await using var server = await StartAsync(Fixed("anonymous", 3, "00:00:03"));
        using var http = server.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var admitted = await http.GetAsync(Live);
            Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
            Assert.Matches(AnonymousPolicy(), Assert.Single(admitted.Headers.GetValues("RateLimit-Policy")));
            Assert.Matches($"^\"anonymous\";r={2 - i};t=[1-3]$", Assert.Single(admitted.Headers.GetValues("RateLimit")));
        }

        using var limited = await http.GetAsync(Live);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode); // never 503 (NET-02)
        Assert.Equal("application/problem+json", limited.Content.Headers.ContentType?.MediaType);
        Assert.Contains("too-many-requests", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var retry = limited.Headers.RetryAfter!.Delta!.Value;
        Assert.InRange(retry.TotalSeconds, 1, 3);
        Assert.Matches(AnonymousPolicy(), Assert.Single(limited.Headers.GetValues("RateLimit-Policy")));
        Assert.Matches("""^"anonymous";r=0;t=[1-3]$""", Assert.Single(limited.Headers.GetValues("RateLimit")));
        Assert.True(server.Services.GetRequiredService<RateLimitRegistry>().Rejections >= 1);

        // The next window admits again: within Retry-After (and a little for the limiter's 100 ms replenishing tick).
        var waited = await AdmittedWithinAsync(http, retry + TimeSpan.FromSeconds(1));
        Assert.True(waited <= retry + TimeSpan.FromSeconds(1), $"Admitted again only after {waited}; Retry-After said {retry}.");
    }

    /// <summary>
    /// Polls <see cref="Live"/> until it is admitted (refused requests spend no permit), up to
    /// <paramref name="bound"/> and a margin for a busy machine; returns how long that took, or fails.
    /// </summary>
    private static async Task<TimeSpan> AdmittedWithinAsync(HttpClient http, TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < bound + TimeSpan.FromSeconds(10))
        {
            using var again = await http.GetAsync(Live);
            if (again.StatusCode == HttpStatusCode.OK)
            {
                return watch.Elapsed;
            }

            Assert.Equal(HttpStatusCode.TooManyRequests, again.StatusCode);
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.Fail($"Not admitted again within {watch.Elapsed}.");
        return watch.Elapsed;
    }

    [Fact]
    public async Task R03_with_no_trusted_proxy_forwarding_headers_do_not_open_new_buckets()
    {
        await using var server = await StartAsync(Fixed("credentials", 5, "00:01:00"));
        using var http = server.CreateClient();

        var statuses = new List<HttpStatusCode>();
        for (var n = 1; n <= 8; n++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "password", ["username"] = $"nobody{n}", ["password"] = "not the password at all", ["client_id"] = PortcullisServer.ClientId,
                }),
            };
            request.Headers.Add("X-Forwarded-For", $"10.0.0.{n}");
            request.Headers.Add("X-Real-IP", $"10.0.1.{n}");
            using var response = await http.SendAsync(request);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.BadRequest));
        Assert.Equal([HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses[5..]);
    }

    [Fact]
    public async Task R04_client_supplied_address_headers_from_an_untrusted_peer_change_nothing()
    {
        await using var server = await StartAsync([.. Fixed("anonymous", 4, "00:01:00"), ("Hosting:TrustedProxies:0", "127.0.0.2")]);
        using var http = server.CreateClient();

        var statuses = new List<HttpStatusCode>();
        for (var n = 1; n <= 8; n++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Live);
            request.Headers.Add("X-Real-IP", $"1.2.3.{n}");
            request.Headers.Add("Forwarded", $"for=1.2.3.{n}");
            request.Headers.Add("True-Client-IP", $"1.2.4.{n}");
            request.Headers.Add("CF-Connecting-IP", $"1.2.5.{n}");
            request.Headers.Add("X-Forwarded-For", $"1.2.3.{n}, 127.0.0.2");
            using var response = await http.SendAsync(request);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal(4, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.All(statuses[4..], s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
    }

    [Fact]
    public async Task R04_a_trusted_proxy_forwards_the_rightmost_untrusted_hop_for_limits_and_the_login_throttle()
    {
        await using var server = await StartAsync(
        [
            .. Fixed("anonymous", 2, "00:01:00"),
            ("Hosting:TrustedProxies:0", "127.0.0.0/8"),
            ("LoginThrottle:AttemptsPerIp", "2"),
        ]);
        using var http = server.CreateClient();

        async Task<HttpStatusCode> Get(string forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Live);
            request.Headers.Add("X-Forwarded-For", forwardedFor);
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        // Each real client behind the proxy has its own budget...
        Assert.Equal(HttpStatusCode.OK, await Get("198.51.100.1"));
        Assert.Equal(HttpStatusCode.OK, await Get("198.51.100.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("198.51.100.1"));
        Assert.Equal(HttpStatusCode.OK, await Get("198.51.100.2"));
        // ...and a client prepending addresses of its own is still counted by the hop the proxy saw.
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("203.0.113.9, 198.51.100.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Get("203.0.113.10, 198.51.100.1, 127.0.0.5"));

        // LoginThrottle's per-IP window uses the same resolved address.
        async Task<HttpStatusCode> Login(string forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "password", ["username"] = ClientFlows.UniqueName("ghost"), ["password"] = "not the password at all", ["client_id"] = PortcullisServer.ClientId,
                }),
            };
            request.Headers.Add("X-Forwarded-For", forwardedFor);
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.BadRequest, await Login("192.0.2.1"));
        Assert.Equal(HttpStatusCode.BadRequest, await Login("192.0.2.1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Login("192.0.2.1"));
        Assert.Equal(HttpStatusCode.BadRequest, await Login("192.0.2.2"));
    }

    [Fact]
    public async Task R02_64_truly_parallel_requests_against_10_per_window_admit_exactly_10()
    {
        await using var server = await StartAsync(
        [
            .. Fixed("ten", 10, "00:05:00"),
            ("RateLimits:Routes:0:Route", "/health/live"),
            ("RateLimits:Routes:0:Policies", "ten"),
        ]);
        var clients = Enumerable.Range(0, 8).Select(_ => server.CreateClient()).ToArray();
        try
        {
            // Connections first, so the burst is requests racing, not handshakes queueing.
            await Task.WhenAll(clients.Select(c => c.GetAsync("health/ready")));
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var tasks = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
            {
                await gate.Task;
                using var response = await clients[i % clients.Length].GetAsync(Live);
                return response.StatusCode;
            })).ToArray();
            gate.SetResult();
            var statuses = await Task.WhenAll(tasks);

            Assert.Equal(10, statuses.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(54, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task R01_several_limits_on_one_route_attached_by_configuration_all_must_admit()
    {
        await using var server = await StartAsync(
            ("RateLimits:Policies:pair:Limits:0:Algorithm", "FixedWindow"),
            ("RateLimits:Policies:pair:Limits:0:PermitLimit", "3"),
            ("RateLimits:Policies:pair:Limits:0:Window", "00:00:03"),
            ("RateLimits:Policies:pair:Limits:0:PartitionBy", "ClientIp"),
            ("RateLimits:Policies:pair:Limits:1:Algorithm", "FixedWindow"),
            ("RateLimits:Policies:pair:Limits:1:PermitLimit", "4"),
            ("RateLimits:Policies:pair:Limits:1:Window", "00:05:00"),
            ("RateLimits:Policies:pair:Limits:1:PartitionBy", "ClientIp,Route"),
            ("RateLimits:Routes:0:Route", "/health/live"),
            ("RateLimits:Routes:0:Policies", "pair"));
        using var http = server.CreateClient();

        for (var i = 0; i < 3; i++)
        {
            using var admitted = await http.GetAsync(Live);
            Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
            Assert.Equal("\"anonymous\";q=1000000;w=60, \"pair-1\";q=3;w=3, \"pair-2\";q=4;w=300", Assert.Single(admitted.Headers.GetValues("RateLimit-Policy")));
        }

        using (var first = await http.GetAsync(Live))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, first.StatusCode); // 3 per 3 s
            Assert.InRange(first.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 3);
        }

        // Another route is not attached: unaffected.
        using (var ready = await http.GetAsync("health/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.DoesNotContain("pair", string.Join(",", ready.Headers.GetValues("RateLimit-Policy")), StringComparison.Ordinal);
        }

        // The 3 s window turns over (waited for, not slept): the 4th request is admitted by both limits...
        await AdmittedWithinAsync(http, TimeSpan.FromSeconds(3));

        using var second = await http.GetAsync(Live);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode); // ...the 5th is not: 4 per 5 minutes, though the 3 s window admits
        Assert.InRange(second.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 6, 300);
        Assert.Contains("\"pair-2\";r=0;t=", Assert.Single(second.Headers.GetValues("RateLimit")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task R06_path_variants_share_the_route_bucket()
    {
        await using var server = await StartAsync(
        [
            .. Fixed("byroute", 4, "00:05:00", "Route"),
            ("RateLimits:Routes:0:Route", "health/live/"),
            ("RateLimits:Routes:0:Policies", "byroute"),
        ]);
        using var http = server.CreateClient();
        string[] variants = ["health/live", "HEALTH/LIVE", "health/live/", "health/%6Cive", "health/live?x=1", "Health/Live?y=2&z=3", "health/live?", "health/live/?a", "health//live", "/health/live"];

        var admitted = new List<string>();
        foreach (var variant in variants)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BaseAddress + variant));
            using var response = await http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                admitted.Add(variant);
            }
            else
            {
                // Not a fresh budget: refused, or not this endpoint at all (then the fallback policy answers).
                Assert.True(response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.NotFound or HttpStatusCode.Unauthorized, $"{variant}: {response.StatusCode}");
            }
        }

        Assert.Equal(variants[..4], admitted);
    }

    [Fact]
    public async Task R01_authenticated_limits_are_per_user()
    {
        await using var server = await StartAsync(Fixed("authenticated", 2, "00:05:00", "User"));
        using var http = server.CreateClient();
        var alice = await http.NewUserAsync("alice");
        var bob = await http.NewUserAsync("bob");

        async Task<HttpStatusCode> Me(string token)
        {
            using var response = await http.GetWithTokenAsync("api/me", token);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Me(alice.Tokens.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await Me(alice.Tokens.AccessToken));
        Assert.Equal(HttpStatusCode.TooManyRequests, await Me(alice.Tokens.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await Me(bob.Tokens.AccessToken)); // same IP, other user
    }

    [Fact]
    public async Task R05_health_answers_while_a_flood_of_slow_requests_hits_the_global_concurrency_cap()
    {
        await using var server = await StartAsync(("RateLimits:GlobalConcurrencyLimit", "2"));
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("flood");
        await http.RegisterOkAsync(name);
        await http.GetAsync("health/live"); // warm the connection pool

        using var flooding = server.CreateClient();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var flood = Enumerable.Range(0, 40).Select(_ => Task.Run(async () =>
        {
            await gate.Task;
            using var response = await flooding.PasswordGrantAsync(name, "wrong password, hashed slowly");
            return (response.StatusCode, response.Headers.RetryAfter);
        })).ToArray();
        gate.SetResult();

        var clock = Stopwatch.StartNew();
        using var health = await http.GetAsync(Live);
        var healthTime = clock.Elapsed;
        var results = await Task.WhenAll(flood);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.True(healthTime < TimeSpan.FromSeconds(10), $"health took {healthTime}");
        var refused = results.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.NotNull(r.RetryAfter));
        Assert.DoesNotContain(results, r => r.StatusCode == HttpStatusCode.ServiceUnavailable);
    }

    [Fact]
    public async Task C01_invalid_rate_limit_settings_stop_start_up_and_every_problem_is_listed()
    {
        var dataDirectory = HostRun.NewDataDirectory();
        try
        {
            var settings = HostRun.Settings(dataDirectory, HostRun.FreePort(),
                ("RateLimits:Policies:leaky:Algorithm", "LeakyBucket"),
                ("RateLimits:Policies:zero:Algorithm", "FixedWindow"),
                ("RateLimits:Policies:zero:PermitLimit", "5"),
                ("RateLimits:Policies:zero:Window", "00:00:00"),
                ("RateLimits:Policies:negative:Algorithm", "TokenBucket"),
                ("RateLimits:Policies:negative:TokenLimit", "-1"),
                ("RateLimits:Policies:negative:TokensPerPeriod", "1"),
                ("RateLimits:Policies:negative:ReplenishmentPeriod", "00:00:01"),
                ("RateLimits:Policies:parts:Algorithm", "Concurrency"),
                ("RateLimits:Policies:parts:PermitLimit", "1"),
                ("RateLimits:Policies:parts:PartitionBy", "ClientIp,UserAgent"),
                ("RateLimits:Routes:0:Route", "/health/live"),
                ("RateLimits:Routes:0:Policies", "anonymous, nope"),
                ("RateLimits:Store", "Memcached"));

            var failure = await HostRun.StartFailsAsync(settings);

            var validation = Assert.IsType<OptionsValidationException>(failure);
            string[] expected =
            [
                "RateLimits:Policies:leaky:Algorithm", "RateLimits:Policies:zero:Window", "RateLimits:Policies:negative:TokenLimit",
                "RateLimits:Policies:parts:PartitionBy", "unknown policy 'nope'", "RateLimits:Store 'Memcached'",
            ];
            foreach (var text in expected)
            {
                Assert.Contains(validation.Failures, f => f.Contains(text, StringComparison.Ordinal));
                Assert.Contains(text, validation.Message, StringComparison.Ordinal);
            }

            Assert.Equal(expected.Length, validation.Failures.Count());
        }
        finally
        {
            await HostRun.DeleteQuietlyAsync(dataDirectory);
        }
    }
}
