using System.Net;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>S05: logout through RFC 7009 revocation, /api/me/logout and /api/me/logout-everywhere.</summary>
public sealed class LogoutTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private Task<HttpResponseMessage> RevokeAsync(string token, string? hint = null)
    {
        var form = new Dictionary<string, string> { ["token"] = token, ["client_id"] = PortcullisServer.ClientId };
        if (hint is not null)
        {
            form["token_type_hint"] = hint;
        }

        return _http.PostAsync("connect/revoke", new FormUrlEncodedContent(form));
    }

    private async Task<(string Username, ClientFlows.Tokens First, ClientFlows.Tokens Second)> UserWithTwoSessionsAsync()
    {
        var username = ClientFlows.UniqueName("s05");
        await _http.RegisterOkAsync(username);
        return (username, await _http.LoginAsync(username), await _http.LoginAsync(username));
    }

    [Fact]
    public async Task S05_revoking_the_refresh_token_ends_its_session_access_token_included()
    {
        var (_, session, other) = await UserWithTwoSessionsAsync();
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, session.AccessToken));

        using var revoke = await RevokeAsync(session.RefreshToken!, "refresh_token");
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);

        using var me = await _http.GetWithTokenAsync("api/me", session.AccessToken);
        await Refusal.AssertGeneric401Async(me);
        using var refresh = await _http.RefreshAsync(session.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);

        // Only that session ended.
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, other.AccessToken));
        using var otherRefresh = await _http.RefreshAsync(other.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, otherRefresh.StatusCode);
    }

    [Fact]
    public async Task S05_revoking_an_unknown_or_garbage_token_is_200_and_changes_nothing()
    {
        var (_, session, _) = await UserWithTwoSessionsAsync();
        using var revoke = await RevokeAsync("not-a-token-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode); // RFC 7009 §2.2
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, session.AccessToken));
        using var refresh = await _http.RefreshAsync(session.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
    }

    [Fact]
    public async Task S05_revoking_an_access_token_kills_it_at_once()
    {
        var (_, session, _) = await UserWithTwoSessionsAsync();
        using var revoke = await RevokeAsync(session.AccessToken, "access_token");
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        using var me = await _http.GetWithTokenAsync("api/me", session.AccessToken);
        await Refusal.AssertGeneric401Async(me);
    }

    [Fact]
    public async Task S05_logout_ends_the_current_session_only()
    {
        var (_, session, other) = await UserWithTwoSessionsAsync();

        using var logout = await _http.PostWithTokenAsync("api/me/logout", session.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);

        using var me = await _http.GetWithTokenAsync("api/me", session.AccessToken);
        await Refusal.AssertGeneric401Async(me);
        using var refresh = await _http.RefreshAsync(session.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);

        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, other.AccessToken));
        using var otherRefresh = await _http.RefreshAsync(other.RefreshToken!);
        var rotated = await otherRefresh.ReadTokensAsync();
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, rotated.AccessToken));
    }

    [Fact]
    public async Task S05_logout_also_kills_access_tokens_issued_to_the_session_by_an_earlier_rotation()
    {
        var (_, session, _) = await UserWithTwoSessionsAsync();
        using var refreshed = await _http.RefreshAsync(session.RefreshToken!);
        var rotated = await refreshed.ReadTokensAsync();

        using var logout = await _http.PostWithTokenAsync("api/me/logout", rotated.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, await Refusal.MeStatusAsync(_http, session.AccessToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await Refusal.MeStatusAsync(_http, rotated.AccessToken));
        using var refresh = await _http.RefreshAsync(rotated.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);
    }

    [Fact]
    public async Task S05_logout_everywhere_ends_every_session_of_the_user_and_no_one_elses()
    {
        var (username, first, second) = await UserWithTwoSessionsAsync();
        var (_, _, bystander) = await _http.NewUserAsync("s05b");

        using var logout = await _http.PostWithTokenAsync("api/me/logout-everywhere", first.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);

        foreach (var tokens in new[] { first, second })
        {
            using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
            await Refusal.AssertGeneric401Async(me);
            using var refresh = await _http.RefreshAsync(tokens.RefreshToken!);
            await Refusal.AssertInvalidGrantAsync(refresh);
        }

        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, bystander.AccessToken));

        // The account itself is fine: a new login works.
        var again = await _http.LoginAsync(username);
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, again.AccessToken));
    }
}
