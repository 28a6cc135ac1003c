using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// S04 / SES-03: the session's absolute lifetime (3 min here) that rotation does not extend, and the refresh
/// token's idle lifetime (2 min here), on fake time. Bearer validation (JwtBearer) runs on real time, so only the
/// token endpoint is asserted here. Each test has its own server and clock.
/// </summary>
public sealed class SessionLifetimeTests
{
    private static async Task<(PortcullisServer Server, FakeTimeProvider Time)> StartAsync()
    {
        // Starts at the real now, so the keys and certificates made at start are valid in both clocks.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Tokens:SessionAbsoluteLifetime"] = "00:03:00",
                ["Tokens:RefreshTokenIdleLifetime"] = "00:02:00",
                ["Tokens:AccessTokenLifetime"] = "00:01:00",
            },
            services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(time);
            });
        return (server, time);
    }

    private static async Task<string> LoginAsync(HttpClient http)
    {
        var username = ClientFlows.UniqueName("s04");
        await http.RegisterOkAsync(username);
        return (await http.LoginAsync(username)).RefreshToken!;
    }

    private static async Task<string> RotateOkAsync(HttpClient http, string refreshToken, string when)
    {
        using var response = await http.RefreshAsync(refreshToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"refresh at {when}: {await response.Content.ReadAsStringAsync()}");
        return (await response.ReadTokensAsync()).RefreshToken!;
    }

    [Fact]
    public async Task S04_rotation_does_not_extend_the_session_past_its_3_minute_absolute_lifetime()
    {
        var (server, time) = await StartAsync();
        await using var _ = server;
        using var http = server.CreateClient();
        var refresh = await LoginAsync(http);

        time.Advance(TimeSpan.FromSeconds(60));
        refresh = await RotateOkAsync(http, refresh, "1:00");
        time.Advance(TimeSpan.FromSeconds(60));
        refresh = await RotateOkAsync(http, refresh, "2:00");
        time.Advance(TimeSpan.FromSeconds(59));
        refresh = await RotateOkAsync(http, refresh, "2:59"); // one second before the end

        time.Advance(TimeSpan.FromSeconds(1));
        using var atEnd = await http.RefreshAsync(refresh); // at 3:00 exactly
        await Refusal.AssertInvalidGrantAsync(atEnd);

        // A new login starts a new session.
        var fresh = await LoginAsync(http);
        await RotateOkAsync(http, fresh, "new session");
    }

    [Fact]
    public async Task S04_a_refresh_token_idle_for_2_5_minutes_is_dead()
    {
        var (server, time) = await StartAsync();
        await using var _ = server;
        using var http = server.CreateClient();
        var refresh = await LoginAsync(http);

        time.Advance(TimeSpan.FromSeconds(150));
        using var response = await http.RefreshAsync(refresh);
        await Refusal.AssertInvalidGrantAsync(response);
    }

    [Fact]
    public async Task S04_a_refresh_token_idle_for_1_min_59_s_still_works()
    {
        var (server, time) = await StartAsync();
        await using var _ = server;
        using var http = server.CreateClient();
        var refresh = await LoginAsync(http);

        time.Advance(TimeSpan.FromSeconds(119));
        await RotateOkAsync(http, refresh, "1:59 idle");
    }

    [Fact]
    public async Task S04_each_rotation_starts_a_new_idle_window()
    {
        var (server, time) = await StartAsync();
        await using var _ = server;
        using var http = server.CreateClient();
        var refresh = await LoginAsync(http);

        time.Advance(TimeSpan.FromSeconds(90));
        refresh = await RotateOkAsync(http, refresh, "1:30");

        // 2:59 after login, 1:29 after the rotation: the login's idle window has closed, this token's has not.
        time.Advance(TimeSpan.FromSeconds(89));
        await RotateOkAsync(http, refresh, "2:59");
    }
}
