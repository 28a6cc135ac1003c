using System.Net;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>J14 / SES-06: an operator disables a user with the CLI (another process's view of the same database).</summary>
public sealed class DisableUserTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    // The CLI's change reaches the server through the revocation feed (SyncInterval 200 ms in tests).
    private static readonly TimeSpan Propagation = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task J14_a_user_disabled_by_the_CLI_loses_access_tokens_refresh_tokens_and_login_within_3_s()
    {
        var (_, username, tokens) = await _http.NewUserAsync("j14");
        var (_, _, bystander) = await _http.NewUserAsync("j14b");
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, tokens.AccessToken));

        var cli = await _server.RunCliAsync(null, "users", "disable", "--username", username);
        Assert.True(cli.ExitCode == 0, cli.Error);

        Assert.True(
            await Refusal.EventuallyAsync(async () => await Refusal.MeStatusAsync(_http, tokens.AccessToken) == HttpStatusCode.Unauthorized, Propagation),
            $"the access token still worked {Propagation} after the user was disabled");

        // Never 200 again once refused.
        for (var i = 0; i < 5; i++)
        {
            using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
            await Refusal.AssertGeneric401Async(me);
        }

        using var refresh = await _http.RefreshAsync(tokens.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);
        using var login = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        var body = await Refusal.AssertInvalidGrantAsync(login);
        // Same answer as a wrong password: the account state is not disclosed.
        using var wrong = await _http.PasswordGrantAsync(username, ClientFlows.Password + "x");
        Assert.Equal((await Refusal.AssertInvalidGrantAsync(wrong)).GetRawText(), body.GetRawText());

        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, bystander.AccessToken));
    }

    [Fact]
    public async Task J14_enabling_the_user_again_allows_a_new_login_but_old_tokens_stay_dead()
    {
        var (_, username, tokens) = await _http.NewUserAsync("j14e");
        Assert.Equal(0, (await _server.RunCliAsync(null, "users", "disable", "--username", username)).ExitCode);
        Assert.True(await Refusal.EventuallyAsync(
            async () => await Refusal.MeStatusAsync(_http, tokens.AccessToken) == HttpStatusCode.Unauthorized, Propagation));

        var cli = await _server.RunCliAsync(null, "users", "enable", "--username", username);
        Assert.True(cli.ExitCode == 0, cli.Error);

        // The token endpoint reads the database, so the login works at once; the API's cached user state learns of
        // the CLI's enable within Tokens:SyncInterval (README: CLI changes reach a running server within it) — until
        // then the fresh token is refused, never the other way round.
        var fresh = await _http.LoginAsync(username);
        Assert.True(await Refusal.EventuallyAsync(
            async () => await Refusal.MeStatusAsync(_http, fresh.AccessToken) == HttpStatusCode.OK, Propagation));

        // Let the enable propagate fully, then check the old tokens once more.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await Refusal.MeStatusAsync(_http, tokens.AccessToken));
        using var refresh = await _http.RefreshAsync(tokens.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);
    }

    [Fact]
    public async Task J14_disabling_an_unknown_user_is_exit_code_3_and_changes_nothing()
    {
        var (_, _, tokens) = await _http.NewUserAsync("j14u");
        var cli = await _server.RunCliAsync(null, "users", "disable", "--username", ClientFlows.UniqueName("nobody"));
        Assert.Equal(3, cli.ExitCode);
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, tokens.AccessToken));
    }
}
