using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// What <c>serve</c> prints on standard error once it listens (<see cref="StartupBanner"/>): where it listens, where
/// its data is, the routes and rate-limit policies it loaded, the log format and the next step.
/// </summary>
public sealed class StartupBannerTests
{
    [Fact]
    public async Task The_banner_of_a_fresh_server_says_where_it_listens_what_it_loaded_and_how_to_create_the_administrator()
    {
        await using var server = await ChildServer.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Gateway:Routes:0:Name"] = "orders",
            ["Gateway:Routes:0:Match"] = "/orders/{**rest}",
            ["Gateway:Routes:0:Methods:0"] = "GET",
            ["Gateway:Routes:0:Upstream"] = "http://127.0.0.1:9",
            ["Gateway:Routes:0:Require:Authenticated"] = "true",
        });
        Assert.True(
            await Refusal.EventuallyAsync(() => Task.FromResult(server.Stderr.Contains("--password-stdin", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "no banner: " + server.Stderr);

        var banner = server.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"Portcullis is listening on https://127.0.0.1:{server.Port}", banner[0]);
        Assert.Contains($"Data directory: {server.DataDirectory}", banner);
        Assert.Contains($"TLS self-signed development certificate: {Path.Combine(server.DataDirectory, "dev-cert.pem")}", banner);
        Assert.Contains("Gateway routes (1): orders", banner);
        Assert.Contains("Rate-limit policies (3): anonymous, authenticated, credentials", banner);
        Assert.Contains("Log: JSON lines on stdout (not a terminal); Logging:Format=Text for text", banner); // the test reads a pipe
        Assert.Contains("Next: no administrator exists yet. Create one with:", banner);
        Assert.Contains($"  portcullis admin create --username root --email root@example.com --data-dir {server.DataDirectory}", banner);
        Assert.True(banner.Length <= 12, "the banner is meant to be short: " + server.Stderr);
    }

    [Fact]
    public void Once_an_administrator_exists_the_next_step_is_the_sign_in_page_and_long_lists_are_cut()
    {
        var facts = new StartupBanner.Facts(
            ["https://127.0.0.1:8443"], "/srv/portcullis", Certificate: null,
            GatewayRoutes: [.. Enumerable.Range(1, 10).Select(i => $"r{i:00}")],
            RateLimitPolicies: ["credentials", "anonymous", "authenticated"],
            ConsoleLogFormat.Text, LogFormatConfigured: false, AdministratorExists: true);

        var lines = StartupBanner.Lines(facts).ToList();

        Assert.Contains("Gateway routes (10): r01, r02, r03, r04, r05, r06, r07, r08 and 2 more", lines);
        Assert.Contains("Rate-limit policies (3): anonymous, authenticated, credentials", lines);
        Assert.Contains("Log: text lines on stdout (a terminal); Logging:Format=Json for JSON", lines);
        Assert.Equal("Next: sign in at https://127.0.0.1:8443/account; OpenID Connect discovery at https://127.0.0.1:8443/.well-known/openid-configuration", lines[^1]);
        Assert.DoesNotContain(lines, l => l.Contains("admin create", StringComparison.Ordinal));
    }
}
