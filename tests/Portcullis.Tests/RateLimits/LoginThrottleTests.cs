using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.RateLimits;

/// <summary>AUTH-08: password guessing is slowed per account and per IP, never locking an owner out for good.</summary>
public sealed class LoginThrottleTests
{
    private const string Wrong = "definitely the wrong password 42";

    private static Task<PortcullisServer> StartAsync(
        int attemptsPerIp = 1000, int freeFailures = 3, string first = "00:00:01", string max = "00:00:03", TimeProvider? time = null) =>
        PortcullisServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["LoginThrottle:AttemptsPerIp"] = attemptsPerIp.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LoginThrottle:FreeFailuresPerAccount"] = freeFailures.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LoginThrottle:FirstBackoff"] = first,
                ["LoginThrottle:MaxBackoff"] = max,
            },
            time is null ? null : services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton(time);
            });

    [Fact]
    public async Task A10_repeated_failures_for_one_account_are_throttled_with_429_and_Retry_After()
    {
        await using var server = await StartAsync(first: "00:00:30", max: "00:01:00");
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("alice");
        await http.RegisterOkAsync(name);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var attempt = await http.PasswordGrantAsync(name, Wrong);
            statuses.Add(attempt.StatusCode);
        }

        Assert.Equal([HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest], statuses.Take(4));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);

        // While held back even the right password is not checked (no oracle), and the answer says when to return.
        using var right = await http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
        Assert.Equal("application/problem+json", right.Content.Headers.ContentType?.MediaType);
        Assert.InRange(right.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
    }

    [Fact]
    public async Task A10_L01_a_flood_of_throttled_logins_is_one_audit_event_then_one_with_the_count_not_a_row_each()
    {
        await using var server = await StartAsync(first: "00:05:00", max: "00:10:00");
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("carol");
        await http.RegisterOkAsync(name);
        for (var i = 0; i < 4; i++)
        {
            using var _ = await http.PasswordGrantAsync(name, Wrong); // 3 free failures, then the backoff starts
        }

        const int flood = 25;
        for (var i = 0; i < flood; i++)
        {
            using var refused = await http.PasswordGrantAsync(name, Wrong);
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }

        List<JsonElement> Throttled(string exported) => exported.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("eventId").GetInt32() == 1003).ToList();

        var first = Assert.Single(Throttled((await server.RunCliAsync(null, "audit", "export")).Out)); // not one per refusal
        Assert.Equal("denied", first.GetProperty("outcome").GetString());
        var target = first.GetProperty("target").GetString()!;
        Assert.StartsWith("name:", target, StringComparison.Ordinal); // the keyed hash, never the name
        Assert.DoesNotContain(name, target, StringComparison.Ordinal);

        await server.Services.GetRequiredService<Portcullis.Audit.DenialAggregator>().FlushAsync(default);
        var events = Throttled((await server.RunCliAsync(null, "audit", "export")).Out);
        Assert.Equal(2, events.Count);
        var summary = events[1];
        Assert.Equal(target, summary.GetProperty("target").GetString());
        Assert.Equal(flood - 1, summary.GetProperty("details").GetProperty("count").GetInt32()); // every refusal counted
        Assert.Equal("127.0.0.1", summary.GetProperty("clientIp").GetString());
    }

    [Fact]
    public async Task A14_the_owner_gets_in_after_the_documented_backoff_however_many_guesses_came_before()
    {
        // The server's clock stands still until the test moves it: on a busy machine 40 Argon2 checks can take
        // longer than the backoff itself, and the "held" check below must not race the real clock.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await StartAsync(first: "00:00:01", max: "00:00:02", time: time);
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("bob");
        await http.RegisterOkAsync(name);

        for (var i = 0; i < 40; i++)
        {
            using var _ = await http.PasswordGrantAsync(name, Wrong);
        }

        using (var held = await http.PasswordGrantAsync(name, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, held.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(2.5)); // MaxBackoff is the ceiling whatever the count
        var tokens = await http.LoginAsync(name);
        Assert.False(string.IsNullOrEmpty(tokens.AccessToken));
    }

    /// <summary>A server with three free failures, a 2 s first backoff and a 4 s ceiling, on <paramref name="time"/>.</summary>
    private static Task<PortcullisServer> StartSteppingAsync(SteppingClock time) =>
        StartAsync(freeFailures: 3, first: "00:00:02", max: "00:00:04", time: time);

    /// <summary>Registers an account and fails its password four times: the fourth failure opens the 2 s backoff.</summary>
    private static async Task<string> StartBackoffAsync(HttpClient http)
    {
        var name = ClientFlows.UniqueName("clock");
        await http.RegisterOkAsync(name);
        for (var i = 0; i < 4; i++)
        {
            using var failed = await http.PasswordGrantAsync(name, Wrong);
            Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        }

        return name;
    }

    [Fact]
    public async Task A14_a_wall_clock_step_back_during_a_backoff_neither_stretches_Retry_After_nor_holds_the_owner_longer()
    {
        var time = new SteppingClock();
        await using var server = await StartSteppingAsync(time);
        using var http = server.CreateClient();
        var name = await StartBackoffAsync(http);

        time.Advance(TimeSpan.FromSeconds(1.2)); // 0.8 s of the 2 s backoff remain
        time.StepWallClock(TimeSpan.FromMinutes(-10));

        using (var held = await http.PasswordGrantAsync(name, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, held.StatusCode);
            var retryAfter = held.Headers.RetryAfter!.Delta!.Value;
            Assert.True(retryAfter <= TimeSpan.FromSeconds(4), $"Retry-After {retryAfter} is beyond MaxBackoff");
            Assert.Equal(TimeSpan.FromSeconds(1), retryAfter); // what remains of the backoff, rounded up
        }

        time.Advance(TimeSpan.FromSeconds(1)); // the backoff has run out, whatever the wall clock says
        using var owner = await http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
    }

    [Fact]
    public async Task A14_a_wall_clock_step_forward_does_not_cut_a_backoff_short()
    {
        var time = new SteppingClock();
        await using var server = await StartSteppingAsync(time);
        using var http = server.CreateClient();
        var name = await StartBackoffAsync(http);

        time.StepWallClock(TimeSpan.FromMinutes(10));

        using (var held = await http.PasswordGrantAsync(name, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, held.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), held.Headers.RetryAfter!.Delta!.Value);
        }

        time.Advance(TimeSpan.FromSeconds(1.9));
        using (var stillHeld = await http.PasswordGrantAsync(name, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, stillHeld.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(0.1));
        using var owner = await http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
    }

    [Fact]
    public async Task A10_a_wall_clock_step_forward_does_not_wipe_an_accounts_failures()
    {
        var time = new SteppingClock();
        await using var server = await StartSteppingAsync(time);
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("clock");
        await http.RegisterOkAsync(name);
        for (var i = 0; i < 3; i++)
        {
            using var free = await http.PasswordGrantAsync(name, Wrong);
            Assert.Equal(HttpStatusCode.BadRequest, free.StatusCode);
        }

        // An hour on the wall clock, far beyond the 8 s after which old failures are forgotten; none passed really.
        time.StepWallClock(TimeSpan.FromHours(1));
        using (var fourth = await http.PasswordGrantAsync(name, Wrong))
        {
            Assert.Equal(HttpStatusCode.BadRequest, fourth.StatusCode);
        }

        using var held = await http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.TooManyRequests, held.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(2), held.Headers.RetryAfter!.Delta!.Value);
    }

    [Fact]
    public async Task A11_one_IP_trying_many_accounts_is_cut_off_for_that_IP()
    {
        await using var server = await StartAsync(attemptsPerIp: 10, freeFailures: 1000);
        using var http = server.CreateClient();
        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < 15; i++)
        {
            using var attempt = await http.PasswordGrantAsync(ClientFlows.UniqueName("u"), Wrong);
            codes.Add(attempt.StatusCode);
        }

        Assert.All(codes.Take(10), c => Assert.Equal(HttpStatusCode.BadRequest, c));
        Assert.All(codes.Skip(10), c => Assert.Equal(HttpStatusCode.TooManyRequests, c));
    }

    [Fact]
    public async Task Throttled_answers_are_the_same_for_a_real_and_an_unknown_account()
    {
        await using var server = await StartAsync(first: "00:00:30", max: "00:01:00");
        using var http = server.CreateClient();
        var real = ClientFlows.UniqueName("real");
        await http.RegisterOkAsync(real);
        var unknown = ClientFlows.UniqueName("ghost");

        async Task<(HttpStatusCode, string, string[])> LastAsync(string name)
        {
            HttpResponseMessage? last = null;
            for (var i = 0; i < 5; i++)
            {
                last?.Dispose();
                last = await http.PasswordGrantAsync(name, Wrong);
            }

            using (last)
            {
                var body = JsonDocument.Parse(await last!.Content.ReadAsStringAsync()).RootElement;
                var shape = string.Join(",", body.EnumerateObject().Where(p => p.Name != "traceId").Select(p => $"{p.Name}={p.Value}"));
                return (last.StatusCode, shape, [.. last.Headers.Select(h => h.Key).Where(h => h != "Date").Order()]);
            }
        }

        var a = await LastAsync(real);
        var b = await LastAsync(unknown);
        Assert.Equal(HttpStatusCode.TooManyRequests, a.Item1);
        Assert.Equal(a.Item1, b.Item1);
        Assert.Equal(a.Item2, b.Item2);
        Assert.Equal(a.Item3, b.Item3);
    }

    [Fact]
    public async Task A10_thirty_IPs_behind_a_trusted_proxy_slow_one_account_and_the_owner_still_gets_in_after_the_window()
    {
        // The server's clock moves only when the test moves it: the 1 s backoff cannot run out between two guesses on
        // a slow machine, and the owner's wait below is a step of the clock, not a sleep.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["RateLimits:TrustedProxies:0"] = "127.0.0.1",
                ["LoginThrottle:AttemptsPerIp"] = "5",
                ["LoginThrottle:FreeFailuresPerAccount"] = "3",
                ["LoginThrottle:FirstBackoff"] = "00:00:01",
                ["LoginThrottle:MaxBackoff"] = "00:00:02",
            },
            services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(time);
            });
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("target");
        await http.RegisterOkAsync(name);

        async Task<HttpResponseMessage> Login(string password, string forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "password", ["username"] = name, ["password"] = password, ["client_id"] = PortcullisServer.ClientId, ["scope"] = "openid",
                }),
            };
            request.Headers.Add("X-Forwarded-For", forwardedFor);
            return await http.SendAsync(request);
        }

        // 30 addresses, one guess each: far below the per-IP allowance of 5, so only the per-account backoff can bite.
        var statuses = new List<HttpStatusCode>();
        for (var n = 1; n <= 30; n++)
        {
            using var guess = await Login(Wrong, $"203.0.113.{n}");
            statuses.Add(guess.StatusCode);
            Assert.True(guess.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.TooManyRequests, $"guess {n}: {guess.StatusCode}");
        }

        // Three free failures, the 4th opens the backoff, and no time passes: every later guess is held back.
        Assert.Equal([HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest], statuses[..4]);
        Assert.All(statuses[4..], s => Assert.Equal(HttpStatusCode.TooManyRequests, s));

        // The owner, from an address the attack never used: held back while the backoff runs, answered the same way...
        using (var held = await Login(ClientFlows.Password, "198.51.100.7"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, held.StatusCode);
            Assert.InRange(held.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 2);
        }

        // ...still held one moment before the first backoff (1 s) has run out, and in once MaxBackoff (2 s, the
        // documented ceiling) has passed, however many guesses came in between.
        time.Advance(TimeSpan.FromSeconds(1) - TimeSpan.FromMilliseconds(1));
        using (var stillHeld = await Login(ClientFlows.Password, "198.51.100.7"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, stillHeld.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(1) + TimeSpan.FromMilliseconds(1));
        using var owner = await Login(ClientFlows.Password, "198.51.100.7");
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
    }
}
