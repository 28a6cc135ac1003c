using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// Issue 25 §2: password hashing is a bounded resource. At most <c>PasswordHashing:MaxConcurrent</c> hashes run,
/// <c>PasswordHashing:QueueLimit</c> wait (at most <c>QueueTimeout</c>), and the rest get 503 with Retry-After at once,
/// before any hashing — while health and authenticated calls keep answering.
/// </summary>
public sealed class PasswordVerificationLimitTests
{
    private const string BusyType = "https://portcullis.dev/problems/busy";
    private const string WrongPassword = "a long wrong password that an attacker sends over and over again 0451";

    /// <summary>
    /// One hash at a time, <paramref name="queue"/> waiting, slower hashes (so a burst arrives while the slot is busy).
    /// The per-IP and per-account login limits are raised (the "many addresses"): only the hashing limit refuses.
    /// </summary>
    private static Task<PortcullisServer> StartAsync(int queue, string queueTimeout = "00:00:30", int iterations = 6, int memoryKiB = 19456) =>
        PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["PasswordHashing:MaxConcurrent"] = "1",
            ["PasswordHashing:QueueLimit"] = queue.ToString(CultureInfo.InvariantCulture),
            ["PasswordHashing:QueueTimeout"] = queueTimeout,
            ["Accounts:Argon2Iterations"] = iterations.ToString(CultureInfo.InvariantCulture),
            ["Accounts:Argon2MemoryKiB"] = memoryKiB.ToString(CultureInfo.InvariantCulture),
            ["LoginThrottle:AttemptsPerIp"] = "1000000",
            ["LoginThrottle:FreeFailuresPerAccount"] = "1000000",
            ["RateLimits:Policies:credentials:Algorithm"] = "FixedWindow",
            ["RateLimits:Policies:credentials:PermitLimit"] = "1000000",
            ["RateLimits:Policies:credentials:Window"] = "00:01:00",
        });

    [Fact]
    public async Task A_login_flood_beyond_the_queue_is_refused_at_once_with_503_and_Retry_After_and_never_hashed_while_health_and_me_keep_answering()
    {
        await using var server = await StartAsync(queue: 1);
        using var http = server.CreateClient();
        var name = ClientFlows.UniqueName("flooded");
        await http.RegisterOkAsync(name);
        var me = await http.LoginAsync(name);
        await WarmConnectionsAsync(http, 32);
        using var counts = new MeterCounts(server.Services.GetRequiredService<PortcullisMetrics>().Logins.Meter);

        // The flood: every other request names the real account, the rest random names, all with a wrong password.
        const int flood = 24;
        var names = Enumerable.Range(0, flood).Select(i => i % 2 == 0 ? name : ClientFlows.UniqueName("nobody")).ToArray();
        var probes = new List<(string Path, HttpStatusCode Status, TimeSpan Took)>();
        var attempts = names.Select(async n =>
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await http.PasswordGrantAsync(n, WrongPassword);
            var took = Stopwatch.GetElapsedTime(started);
            return (Name: n, response.StatusCode, RetryAfter: response.Headers.RetryAfter?.Delta,
                Type: response.Content.Headers.ContentType?.MediaType, Body: await response.Content.ReadAsStringAsync(), Took: took);
        }).ToList();
        var all = Task.WhenAll(attempts);
        for (var i = 0; i < 400 && !all.IsCompleted; i++)
        {
            foreach (var path in new[] { "health/live", "api/me" })
            {
                var started = Stopwatch.GetTimestamp();
                using var response = path == "api/me" ? await http.GetWithTokenAsync(path, me.AccessToken) : await http.GetAsync(path);
                probes.Add((path, response.StatusCode, Stopwatch.GetElapsedTime(started)));
            }

            await Task.Delay(20);
        }

        var results = await all;
        var refused = results.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        var hashed = results.Where(r => r.StatusCode != HttpStatusCode.ServiceUnavailable).ToList();

        // Beyond one running and one waiting, the rest are refused — and only those two kinds of answer exist.
        Assert.NotEmpty(refused);
        Assert.All(hashed, r => Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode));
        Assert.Contains(refused, r => r.Name == name);
        Assert.Contains(refused, r => r.Name != name);
        foreach (var r in refused)
        {
            Assert.Equal("application/problem+json", r.Type);
            Assert.InRange(r.RetryAfter!.Value.TotalSeconds, 1, 30);
            var body = JsonDocument.Parse(r.Body).RootElement;
            Assert.Equal(BusyType, body.GetProperty("type").GetString());
            Assert.Equal(503, body.GetProperty("status").GetInt32());
            Assert.DoesNotContain(r.Name, r.Body, StringComparison.OrdinalIgnoreCase); // no echo of the name
            Assert.DoesNotContain(WrongPassword, r.Body, StringComparison.Ordinal);
        }

        // The same answer for the real account and for unknown names (the trace id aside).
        Assert.Single(refused.Select(r => WithoutTraceId(r.Body)).Distinct());

        // Refused without hashing: this server's hash count proves it (one verification per answered attempt, none for
        // a 503; each 503 counted). Not by comparing latencies: on a loaded machine a 503's lookup and queue wait can
        // take longer than a hash (the suite's rule: speed is measured by bench/flood.sh, not by timed tests).
        Assert.Equal(hashed.Count, counts.Get("portcullis.password.hashes"));
        Assert.Equal(refused.Count, counts.Get("portcullis.ratelimit.rejections", "policy", "password-hashing"));

        // Health and the authenticated API answered throughout.
        Assert.Contains(probes, p => p.Path == "health/live");
        Assert.Contains(probes, p => p.Path == "api/me");
        Assert.All(probes, p => Assert.Equal(HttpStatusCode.OK, p.Status));

        // One aggregated audit row for the whole flood, with the count; not a row per refusal.
        await server.Services.GetRequiredService<RejectionAggregator>().FlushAsync(TestContext.Current.CancellationToken);
        var export = (await server.RunCliAsync(null, "audit", "export")).Out;
        var rows = export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("eventId").GetInt32() == 7001).ToList();
        var row = Assert.Single(rows);
        Assert.Equal("/connect/token", row.GetProperty("target").GetString());
        var details = row.GetProperty("details");
        Assert.Equal("password-hashing", details.GetProperty("policies").GetString());
        Assert.Equal(refused.Count, details.GetProperty("count").GetInt32());
        Assert.DoesNotContain(name, export, StringComparison.OrdinalIgnoreCase);

        // The log says so once, names nobody, and the flood is over for the owner: the right password works.
        var logs = server.Logs.Text;
        Assert.Single(logs.Split('\n'), l => l.Contains("\"EventId\":3001,", StringComparison.Ordinal));
        Assert.All(names, n => Assert.DoesNotContain(n, logs, StringComparison.OrdinalIgnoreCase));
        using var after = await http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Every_endpoint_that_hashes_answers_503_at_once_while_the_only_hashing_slot_is_taken_and_changes_nothing()
    {
        // No queue; a slow hash (≥ a second here) holds the one slot while the other requests arrive.
        await using var server = await StartAsync(queue: 0, iterations: 10, memoryKiB: 131072);
        using var http = server.CreateClient();
        var (_, name, tokens) = await http.NewUserAsync("holder");
        await WarmConnectionsAsync(http, 8);

        var holder = http.PasswordGrantAsync(ClientFlows.UniqueName("slow"), WrongPassword);
        await Task.Delay(500, TestContext.Current.CancellationToken); // the holder is hashing now

        var newcomer = ClientFlows.UniqueName("newcomer");
        var requests = new (string What, Func<Task<HttpResponseMessage>> Send)[]
        {
            ("login", () => http.PasswordGrantAsync(name, ClientFlows.Password)),
            ("register", () => http.RegisterAsync(newcomer)),
            ("required password change", () => http.PostAsJsonAsync("api/accounts/password",
                new { username = name, currentPassword = ClientFlows.Password, newPassword = "another long passphrase for the account 9902" })),
            ("password change", () => http.PostWithTokenAsync("api/me/password", tokens.AccessToken,
                new { currentPassword = ClientFlows.Password, newPassword = "another long passphrase for the account 9902" })),
            ("profile change", () => http.SendAsync(HttpMethod.Patch, "api/me", tokens.AccessToken, new { email = "changed@example.com", currentPassword = ClientFlows.Password })),
        };
        foreach (var (what, send) in requests)
        {
            using var response = await send();
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{what}: {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(response.Headers.RetryAfter?.Delta);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(BusyType, JsonDocument.Parse(body).RootElement.GetProperty("type").GetString());
            Assert.DoesNotContain(name, body, StringComparison.OrdinalIgnoreCase);
        }

        // All of them were answered while the one hash was still running.
        Assert.False(holder.IsCompleted, "the slow hash finished before the refusals: the test proves nothing");
        using (var held = await holder)
        {
            Assert.Equal(HttpStatusCode.BadRequest, held.StatusCode);
        }

        // Nothing changed: the password, the e-mail address, and the new name is still free.
        var login = await http.LoginAsync(name);
        using var profile = await http.GetWithTokenAsync("api/me", login.AccessToken);
        Assert.NotEqual("changed@example.com", (await profile.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("email").GetString());
        using var registered = await http.RegisterAsync(newcomer);
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
    }

    [Fact]
    public async Task A_login_that_waits_longer_than_the_queue_timeout_is_refused_with_503_before_the_running_hash_ends()
    {
        await using var server = await StartAsync(queue: 4, queueTimeout: "00:00:00.200", iterations: 10, memoryKiB: 131072);
        using var http = server.CreateClient();
        await WarmConnectionsAsync(http, 4);

        var holder = http.PasswordGrantAsync(ClientFlows.UniqueName("slow"), WrongPassword);
        await Task.Delay(500, TestContext.Current.CancellationToken);

        var started = Stopwatch.GetTimestamp();
        using var waited = await http.PasswordGrantAsync(ClientFlows.UniqueName("queued"), WrongPassword);
        var took = Stopwatch.GetElapsedTime(started);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, waited.StatusCode);
        Assert.NotNull(waited.Headers.RetryAfter?.Delta);
        Assert.True(took >= TimeSpan.FromMilliseconds(150), $"refused after {took.TotalMilliseconds:F0} ms: it did not wait in the queue");
        Assert.False(holder.IsCompleted, "the slow hash finished first: the wait was not bounded by the timeout");
        using var held = await holder;
        Assert.Equal(HttpStatusCode.BadRequest, held.StatusCode);
    }

    [Fact]
    public async Task Invalid_password_hashing_settings_stop_start_up_and_every_problem_is_listed()
    {
        var dataDirectory = HostRun.NewDataDirectory();
        var port = HostRun.FreePort();
        try
        {
            var settings = HostRun.Settings(dataDirectory, port,
                ("PasswordHashing:MaxConcurrent", "0"),
                ("PasswordHashing:QueueLimit", "-1"),
                ("PasswordHashing:QueueTimeout", "00:00:00"));

            var failure = await HostRun.StartFailsAsync(settings);

            var validation = Assert.IsType<OptionsValidationException>(failure);
            Assert.Contains(validation.Failures, f => f.Contains("PasswordHashing:MaxConcurrent", StringComparison.Ordinal));
            Assert.Contains(validation.Failures, f => f.Contains("PasswordHashing:QueueLimit", StringComparison.Ordinal));
            Assert.Contains(validation.Failures, f => f.Contains("PasswordHashing:QueueTimeout", StringComparison.Ordinal));
            Assert.False(await HostRun.ListensAsync(port));
        }
        finally
        {
            await HostRun.DeleteQuietlyAsync(dataDirectory);
        }
    }

    /// <summary>Opens <paramref name="count"/> pooled connections, so the flood measures requests, not TLS handshakes.</summary>
    private static async Task WarmConnectionsAsync(HttpClient http, int count)
    {
        var warm = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => http.GetAsync("health/live")));
        foreach (var response in warm)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }
    }

    private static string WithoutTraceId(string body)
    {
        var json = JsonDocument.Parse(body).RootElement;
        return JsonSerializer.Serialize(json.EnumerateObject().Where(p => p.Name != "traceId").ToDictionary(p => p.Name, p => p.Value.ToString()));
    }

    /// <summary>
    /// Sums the long counters of one server's meter. Every server in this process has a meter named "Portcullis" (and
    /// the Prometheus exporter listens by name), so exact counts come from listening to this meter instance only.
    /// </summary>
    private sealed class MeterCounts : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _sums = new();

        public MeterCounts(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                _sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value);
                foreach (var tag in tags)
                {
                    _sums.AddOrUpdate($"{instrument.Name}|{tag.Key}={tag.Value}", value, (_, sum) => sum + value);
                }
            });
            _listener.Start();
        }

        public long Get(string instrument, string? tag = null, string? value = null) =>
            _sums.GetValueOrDefault(tag is null ? instrument : $"{instrument}|{tag}={value}");

        public void Dispose() => _listener.Dispose();
    }
}
