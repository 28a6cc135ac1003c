using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Text.Json;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

public sealed class MetricsAndAlertsTests
{
    [Fact]
    public async Task Metrics_need_the_metrics_read_permission_and_count_logins_and_tokens()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        using (var anonymous = await http.GetAsync("metrics"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var (_, name, user) = await http.NewUserAsync("plain");
        using (var forbidden = await http.GetWithTokenAsync("metrics", user.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        using (await http.PasswordGrantAsync(name, "a wrong password for the metric"))
        {
        }

        // A scraper is a client with the metrics:read scope (client credentials).
        var added = await server.RunCliAsync(null, "clients", "add", "--name", "prometheus", "--scopes", "metrics:read", "--json");
        var client = JsonDocument.Parse(added.Out).RootElement;
        using var tokenResponse = await http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = client.GetProperty("client_id").GetString()!,
            ["client_secret"] = client.GetProperty("client_secret").GetString()!,
            ["scope"] = "metrics:read",
        }));
        var scraper = (await tokenResponse.ReadTokensAsync()).AccessToken;

        string body = "";
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!body.Contains("portcullis_logins_total", StringComparison.Ordinal) || !body.Contains("outcome=\"failure\"", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "metrics did not appear: " + body);
            using var metrics = await http.GetWithTokenAsync("metrics", scraper);
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            body = await metrics.Content.ReadAsStringAsync();
            await Task.Delay(200);
        }

        Assert.Contains("portcullis_tokens_issued_total", body, StringComparison.Ordinal);
        Assert.Contains("grant_type=\"client_credentials\"", body, StringComparison.Ordinal);
        Assert.Contains("http_server_request_duration", body, StringComparison.Ordinal);
        Assert.DoesNotContain(name, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_burst_of_failures_raises_one_security_alert_per_episode_for_brute_force_and_credential_stuffing()
    {
        await using var server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["LoginThrottle:FreeFailuresPerAccount"] = "3",
            ["LoginThrottle:AttemptsPerIp"] = "12",
            ["LoginThrottle:FirstBackoff"] = "00:00:30",
        });
        using var http = server.CreateClient();
        var victim = ClientFlows.UniqueName("victim");
        await http.RegisterOkAsync(victim);
        for (var i = 0; i < 6; i++)
        {
            using var _ = await http.PasswordGrantAsync(victim, "guess number " + i + " is wrong");
        }

        for (var i = 0; i < 12; i++)
        {
            using var _ = await http.PasswordGrantAsync(ClientFlows.UniqueName("stuffed"), "a stuffed password");
        }

        var admin = ClientFlows.UniqueName("root");
        await server.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", admin, "--password-stdin");
        // The admin's own login counts against the per-IP window: read the trail on the CLI instead.
        var export = await server.RunCliAsync(null, "audit", "export");
        var alerts = export.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("name").GetString() == "security.alert")
            .Select(e => e.GetProperty("details").GetProperty("kind").GetString())
            .ToList();
        Assert.Equal(1, alerts.Count(k => k == "brute_force"));
        Assert.Equal(1, alerts.Count(k => k == "credential_stuffing"));
    }
}

public sealed class RateLimitAuditTests
{
    [Fact]
    public async Task R01_L01_a_flood_of_rejections_becomes_one_aggregated_audit_event_with_the_count()
    {
        await using var server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["RateLimits:Policies:anonymous:Algorithm"] = "FixedWindow",
            ["RateLimits:Policies:anonymous:PermitLimit"] = "2",
            ["RateLimits:Policies:anonymous:Window"] = "00:05:00",
            ["RateLimits:Policies:anonymous:PartitionBy"] = "ClientIp",
        });
        using var http = server.CreateClient();
        var rejected = 0;
        for (var i = 0; i < 30; i++)
        {
            using var response = await http.GetAsync("health/live");
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                rejected++;
            }
        }

        Assert.Equal(28, rejected);
        await server.Services.GetRequiredService<Portcullis.Audit.RejectionAggregator>().FlushAsync(default);
        var export = await server.RunCliAsync(null, "audit", "export");
        var events = export.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("eventId").GetInt32() == 7001).ToList();
        var only = Assert.Single(events);
        Assert.Equal(28, only.GetProperty("details").GetProperty("count").GetInt32());
        Assert.Equal("127.0.0.1", only.GetProperty("clientIp").GetString());
    }
}
