using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// A log destination that stops taking lines — a stdout pipe nobody reads, a stdout whose reader went away, a log file
/// that cannot be written — costs log lines, never request time or an authorization decision; and the loss is seen:
/// <c>/health/ready</c> says degraded, the <c>portcullis_log_*</c> metrics count it, and one <c>security.alert</c>
/// (<c>log_sink_failed</c>) is written to the audit trail, which is in the database and loses nothing.
/// </summary>
public sealed partial class LogSinkFailureTests
{
    /// <summary>
    /// The most a request may take while a log sink is stuck. Generous for a request that does no hashing on a shared
    /// test machine, and below the 2 s a logging thread used to wait for room in a full queue.
    /// </summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(1);

    /// <summary>A password login hashes (Argon2id) on a machine that other test runs share: a little more room.</summary>
    private static readonly TimeSpan PromptLogin = TimeSpan.FromSeconds(1.5);

    private const string WrongPassword = "not the password of this account at all";

    [Fact]
    public async Task A_stdout_pipe_nobody_reads_drops_lines_at_once_and_requests_keep_their_speed_and_decisions()
    {
        await using var server = await ChildServer.StartAsync(ChildServer.Output.Unread);
        using var http = server.Client();
        var scraper = await ScraperTokenAsync(http, server.RunCliAsync);
        var name = ClientFlows.UniqueName("stuckout");
        var id = await http.RegisterOkAsync(name);

        // One request line per request: these fill the pipe, then the writer's queue, then lines are dropped.
        await FloodUntilDroppedAsync(http, scraper);

        var done = await ProbeAsync(http, name);
        await AssertReadyAsync(http, "degraded");
        var metrics = await MetricsAsync(http, scraper, "stdout", "queue_full");
        Assert.Equal(1, metrics.Alerts); // one alert for the episode, not one per dropped line
        await AssertAuditAsync(server.RunCliAsync, id, done, "stdout");

        // A reader arrives: lines flow again, readiness is back to ok, and the log itself says how many were lost.
        server.ReadStdout();
        await AssertReadyAsync(http, "ok");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!server.Stdout.Split('\n').Any(l => l.Contains("\"EventId\":1101", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, "no dropped-lines warning after stdout was read again");
            await Task.Delay(200);
        }

        var warning = JsonDocument.Parse(server.Stdout.Split('\n').First(l => l.Contains("\"EventId\":1101", StringComparison.Ordinal))).RootElement;
        Assert.True(warning.GetProperty("State").GetProperty("Dropped").GetInt64() > 0);
        Assert.Equal(1, (await MetricsAsync(http, scraper, "stdout", "queue_full")).Alerts); // recovery raises nothing
    }

    [Fact]
    public async Task A_stdout_whose_reader_went_away_shows_in_health_metrics_and_the_audit_trail_and_requests_go_on()
    {
        await using var server = await ChildServer.StartAsync(ChildServer.Output.Unread);
        using var http = server.Client();
        var scraper = await ScraperTokenAsync(http, server.RunCliAsync);
        var name = ClientFlows.UniqueName("closedout");
        var id = await http.RegisterOkAsync(name);
        await AssertReadyAsync(http, "ok");

        server.CloseStdout(); // every write to stdout now fails (EPIPE)

        var done = await ProbeAsync(http, name);
        await AssertReadyAsync(http, "degraded");
        var metrics = await MetricsAsync(http, scraper, "stdout", "write_failed");
        Assert.True(metrics.WriteFailures > 0, "no failed write counted");
        Assert.Equal(1, metrics.Alerts);
        await AssertAuditAsync(server.RunCliAsync, id, done, "stdout");
    }

    public enum FileFault
    {
        /// <summary>The log file is /dev/full: it opens, and every write fails (no space left on the device).</summary>
        DiskFull,

        /// <summary>A regular file stands where the log directory should be: the log file cannot be created.</summary>
        DirectoryIsAFile,
    }

    [Theory]
    [InlineData(FileFault.DiskFull)]
    [InlineData(FileFault.DirectoryIsAFile)]
    public async Task A_log_file_that_cannot_be_written_shows_in_health_metrics_and_the_audit_trail_and_requests_go_on(FileFault fault)
    {
        // Tests run as root, for whom file modes stop nothing: the faults are ones that stop root too.
        var scratch = Directory.CreateTempSubdirectory("portcullis-badlog-").FullName;
        try
        {
            string path;
            if (fault == FileFault.DiskFull)
            {
                path = Path.Combine(scratch, "portcullis.log");
                File.CreateSymbolicLink(path, "/dev/full");
            }
            else
            {
                await File.WriteAllTextAsync(Path.Combine(scratch, "logs"), "a file, not a directory");
                path = Path.Combine(scratch, "logs", "portcullis.log");
            }

            // A process of its own: its metrics are its own (in-process servers share the test process's meters).
            await using var server = await ChildServer.StartAsync(ChildServer.Output.Read, new Dictionary<string, string?>
            {
                ["Logging:File:Path"] = path,
                ["Logging:File:RollDaily"] = "false",
            });
            using var http = server.Client();
            var scraper = await ScraperTokenAsync(http, server.RunCliAsync);
            var name = ClientFlows.UniqueName("badfile");
            var id = await http.RegisterOkAsync(name);

            var done = await ProbeAsync(http, name);
            await AssertReadyAsync(http, "degraded");
            var metrics = await MetricsAsync(http, scraper, "file", "write_failed");
            Assert.True(metrics.WriteFailures > 0, "no failed write counted");
            Assert.Equal(1, metrics.Alerts);
            await AssertAuditAsync(server.RunCliAsync, id, done, "file");
            Assert.Contains("\"EventId\":1102", server.Stdout, StringComparison.Ordinal); // the alert reached the working sink
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>What <see cref="ProbeAsync"/> did, for the audit check.</summary>
    private sealed record Probes(int Logins, int FailedLogins);

    /// <summary>
    /// While the sink is stuck: liveness, a bad token, good and wrong password logins and an authenticated call, each
    /// with its usual answer and within <see cref="Prompt"/>.
    /// </summary>
    private static async Task<Probes> ProbeAsync(HttpClient http, string name)
    {
        const int rounds = 3;
        for (var i = 0; i < rounds; i++)
        {
            using (var live = await TimedAsync(Prompt, "GET /health/live", () => http.GetAsync("health/live")))
            {
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            }

            using (var forged = await TimedAsync(Prompt, "GET /api/me with a bad token", () => http.GetWithTokenAsync("api/me", "eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl")))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
            }

            using (var wrong = await TimedAsync(PromptLogin, "a login with a wrong password", () => http.PasswordGrantAsync(name, WrongPassword)))
            {
                Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
                Assert.Equal("invalid_grant", (await wrong.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
            }

            using var login = await TimedAsync(PromptLogin, "a login", () => http.PasswordGrantAsync(name, ClientFlows.Password));
            var tokens = await login.ReadTokensAsync();
            using var me = await TimedAsync(Prompt, "GET /api/me", () => http.GetWithTokenAsync("api/me", tokens.AccessToken));
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            Assert.Equal(name, (await me.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("username").GetString());
        }

        return new Probes(rounds, rounds);
    }

    private static async Task<HttpResponseMessage> TimedAsync(TimeSpan bound, string what, Func<Task<HttpResponseMessage>> send)
    {
        var started = Stopwatch.GetTimestamp();
        var response = await send();
        var took = Stopwatch.GetElapsedTime(started);
        Assert.True(took < bound, $"{what} took {took.TotalMilliseconds:F0} ms while a log sink was stuck (bound {bound.TotalMilliseconds:F0} ms)");
        return response;
    }

    /// <summary>
    /// Requests from several connections at once, in rounds, until the metrics count lines dropped from the full queue.
    /// No request may be slow on the way: the first slow one ends the flood and fails the test.
    /// </summary>
    private static async Task FloodUntilDroppedAsync(HttpClient http, string scraper)
    {
        const int workers = 8, perRound = 1_000, maxRounds = 40;
        var flood = TimeSpan.FromSeconds(1.5); // a little above Prompt: eight requests at once on a shared machine
        for (var round = 0; round < maxRounds; round++)
        {
            using var stop = new CancellationTokenSource();
            var next = 0;
            string? slow = null;
            await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
            {
                while (!stop.IsCancellationRequested && Interlocked.Increment(ref next) <= perRound)
                {
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        using var live = await http.GetAsync("health/live", stop.Token);
                        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }

                    var took = Stopwatch.GetElapsedTime(started);
                    if (took >= flood)
                    {
                        slow ??= $"GET /health/live took {took.TotalMilliseconds:F0} ms in round {round} of the flood";
                        await stop.CancelAsync();
                    }
                }
            }));
            Assert.Null(slow);
            using var metrics = await http.GetWithTokenAsync("metrics", scraper);
            if (Sample(await metrics.Content.ReadAsStringAsync(), "portcullis_log_lines_dropped_total", ("sink", "stdout"), ("reason", "queue_full")) > 0)
            {
                return;
            }
        }

        Assert.Fail($"no line was dropped from the full queue after {maxRounds * perRound} requests");
    }

    private static async Task<string> ReadyStatusAsync(HttpClient http)
    {
        using var ready = await TimedAsync(Prompt, "GET /health/ready", () => http.GetAsync("health/ready"));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode); // degraded is not down: never a 503 for a log sink
        return (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString()!;
    }

    private static async Task AssertReadyAsync(HttpClient http, string expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        string status;
        while ((status = await ReadyStatusAsync(http)) != expected)
        {
            Assert.True(DateTime.UtcNow < deadline, $"/health/ready stayed '{status}', expected '{expected}'");
            await Task.Delay(200);
        }
    }

    /// <summary>A scraper: a client with the metrics:read scope, created with the CLI, signed in by client credentials.</summary>
    private static async Task<string> ScraperTokenAsync(HttpClient http, Func<string[], Task<PortcullisServer.CliResult>> cli)
    {
        var added = await cli(["clients", "add", "--name", "prometheus", "--scopes", "metrics:read", "--json"]);
        Assert.Equal(0, added.ExitCode);
        var client = JsonDocument.Parse(added.Out).RootElement;
        using var response = await http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = client.GetProperty("client_id").GetString()!,
            ["client_secret"] = client.GetProperty("client_secret").GetString()!,
            ["scope"] = "metrics:read",
        }));
        return (await response.ReadTokensAsync()).AccessToken;
    }

    private sealed record SinkMetrics(long Dropped, long WriteFailures, long Alerts);

    /// <summary>Waits until /metrics counts dropped lines of <paramref name="sink"/> for <paramref name="reason"/> and the alert.</summary>
    private static async Task<SinkMetrics> MetricsAsync(HttpClient http, string scraper, string sink, string reason)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var response = await http.GetWithTokenAsync("metrics", scraper);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync();
            var metrics = new SinkMetrics(
                Sample(body, "portcullis_log_lines_dropped_total", ("sink", sink), ("reason", reason)),
                Sample(body, "portcullis_log_write_failures_total", ("sink", sink)),
                Sample(body, "portcullis_security_alerts_total", ("kind", "log_sink_failed")));
            if (metrics.Dropped > 0 && metrics.Alerts > 0)
            {
                return metrics;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no dropped {sink} lines ({reason}) or no log_sink_failed alert in the metrics:\n{body}");
            await Task.Delay(250);
        }
    }

    /// <summary>The value of a Prometheus sample with the given labels (others allowed), or 0 when there is none.</summary>
    private static long Sample(string body, string metric, params (string Name, string Value)[] labels)
    {
        foreach (Match m in SampleLine().Matches(body))
        {
            if (m.Groups["name"].Value == metric && labels.All(l => m.Groups["labels"].Value.Contains($"{l.Name}=\"{l.Value}\"", StringComparison.Ordinal)))
            {
                return (long)double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    [GeneratedRegex(@"^(?<name>[a-z_]+)\{(?<labels>[^}]*)\} (?<value>[0-9.e+]+)", RegexOptions.Multiline)]
    private static partial Regex SampleLine();

    /// <summary>
    /// The audit trail (read with <c>portcullis audit export</c>) holds every login made while the sink was stuck, and
    /// exactly one <c>security.alert</c> of kind <c>log_sink_failed</c> for the sink.
    /// </summary>
    private static async Task AssertAuditAsync(Func<string[], Task<PortcullisServer.CliResult>> cli, Guid userId, Probes done, string sink)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var export = await cli(["audit", "export"]);
            Assert.Equal(0, export.ExitCode);
            var events = export.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var alerts = events.Where(e => e.GetProperty("name").GetString() == "security.alert"
                && e.GetProperty("details").ToString().Contains("log_sink_failed", StringComparison.Ordinal)).ToList();
            if (alerts.Count > 0)
            {
                var alert = Assert.Single(alerts);
                Assert.Equal($"log:{sink}", alert.GetProperty("target").GetString());
                var target = $"user:{userId}";
                Assert.Equal(done.Logins, events.Count(e => e.GetProperty("name").GetString() == "authn_login_success" && e.GetProperty("target").GetString() == target));
                Assert.Equal(done.FailedLogins, events.Count(e => e.GetProperty("name").GetString() == "authn_login_fail" && e.GetProperty("target").GetString() == target));
                Assert.Single(events, e => e.GetProperty("name").GetString() == "user_created" && e.GetProperty("target").GetString() == target);
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "no log_sink_failed alert in the audit trail:\n" + export.Out);
            await Task.Delay(250);
        }
    }
}
