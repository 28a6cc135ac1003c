using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>Refresh tokens: opaque, stored hashed, rotated, reuse kills the family, no fixation, no type confusion.</summary>
public sealed class RefreshTokenTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    private async Task<(string Username, JsonElement Body)> LoginFullAsync()
    {
        var username = ClientFlows.UniqueName("rt");
        await _http.RegisterOkAsync(username);
        using var response = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (username, await response.JsonAsync());
    }

    [Fact]
    public async Task S01_the_refresh_token_is_opaque_high_entropy_and_not_stored_in_clear()
    {
        var (_, body) = await LoginFullAsync();
        var refresh = body.GetProperty("refresh_token").GetString()!;

        Assert.True(refresh.Length >= 22, $"only {refresh.Length} characters");
        Assert.Matches("^[A-Za-z0-9_-]+$", refresh); // base64url, no dots: not a JWT/JWE
        Assert.DoesNotContain('.', refresh);

        var stored = await StoredText.AllValuesAsync(_server, "OpenIddictTokens");
        Assert.NotEmpty(stored);
        Assert.DoesNotContain(stored, value => value.Contains(refresh, StringComparison.Ordinal));
        Assert.False(await StoredText.FilesContainAsync(_server, refresh), "the raw refresh token is in the database files");

        // Control for the search itself: the user's id, which IS stored, is found the same way.
        var subject = Jwt.PayloadOf(body.GetProperty("access_token").GetString()!)["sub"]!.GetValue<string>();
        Assert.Contains(stored, value => value.Contains(subject, StringComparison.Ordinal));
    }

    [Fact]
    public async Task S02_rotation_gives_a_new_refresh_token_and_reuse_of_the_old_one_kills_the_family()
    {
        var (_, body) = await LoginFullAsync();
        var ra = body.GetProperty("refresh_token").GetString()!;
        var ta = body.GetProperty("access_token").GetString()!;

        using var first = await _http.RefreshAsync(ra);
        var rotated = await first.ReadTokensAsync();
        var ra2 = rotated.RefreshToken!;
        Assert.NotEqual(ra, ra2);
        Assert.NotEqual(ta, rotated.AccessToken);

        using var reuse = await _http.RefreshAsync(ra);
        await Refusal.AssertInvalidGrantAsync(reuse);

        // Reuse means the family is compromised: the newest refresh token dies with it.
        using var afterReuse = await _http.RefreshAsync(ra2);
        await Refusal.AssertInvalidGrantAsync(afterReuse);
    }

    [Fact]
    public async Task S02_after_reuse_the_access_tokens_of_the_family_stop_working()
    {
        var (_, body) = await LoginFullAsync();
        var ra = body.GetProperty("refresh_token").GetString()!;
        var ta = body.GetProperty("access_token").GetString()!;
        using var first = await _http.RefreshAsync(ra);
        var ta2 = (await first.ReadTokensAsync()).AccessToken;
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, ta2));

        using var reuse = await _http.RefreshAsync(ra);
        await Refusal.AssertInvalidGrantAsync(reuse);

        Assert.Equal(HttpStatusCode.Unauthorized, await Refusal.MeStatusAsync(_http, ta));
        Assert.Equal(HttpStatusCode.Unauthorized, await Refusal.MeStatusAsync(_http, ta2));
    }

    [Fact]
    public async Task S02_reuse_is_logged_as_authn_token_reuse_without_the_token()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var (id, _, tokens) = await http.NewUserAsync("s02log");
        using var first = await http.RefreshAsync(tokens.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        // The JSON line carries the event id, not its name: authn_token_reuse is EventIds.Tokens.RefreshTokenReuse.
        Assert.DoesNotContain(server.Logs.EntriesSince(0), e => e.EventId == EventIds.Tokens.RefreshTokenReuse); // a normal rotation is not reuse

        using var reuse = await http.RefreshAsync(tokens.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(reuse);

        var entry = Assert.Single(server.Logs.EntriesSince(0), e => e.EventId == EventIds.Tokens.RefreshTokenReuse);
        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.StartsWith("authn_token_reuse:", entry.Message, StringComparison.Ordinal);
        Assert.Contains(id.ToString(), entry.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(server.Logs.EntriesSince(0), e => e.Message.Contains(tokens.RefreshToken!, StringComparison.Ordinal)
            || e.Message.Contains(tokens.AccessToken, StringComparison.Ordinal));
    }

    [Fact]
    public async Task S07_two_logins_give_different_refresh_tokens_and_token_ids()
    {
        var username = ClientFlows.UniqueName("s07");
        await _http.RegisterOkAsync(username);
        var a = await _http.LoginAsync(username);
        var b = await _http.LoginAsync(username);

        Assert.NotEqual(a.RefreshToken, b.RefreshToken);
        Assert.NotEqual(Jwt.PayloadOf(a.AccessToken)["jti"]!.GetValue<string>(), Jwt.PayloadOf(b.AccessToken)["jti"]!.GetValue<string>());
        Assert.NotEqual(Jwt.PayloadOf(a.AccessToken)["sid"]!.GetValue<string>(), Jwt.PayloadOf(b.AccessToken)["sid"]!.GetValue<string>());
    }

    [Fact]
    public async Task S07_a_client_chosen_refresh_token_in_a_password_grant_is_never_adopted()
    {
        var username = ClientFlows.UniqueName("s07f");
        await _http.RegisterOkAsync(username);
        const string Chosen = "attacker-chosen-refresh-token-value-0123456789";
        using var response = await _http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = username,
            ["password"] = ClientFlows.Password,
            ["client_id"] = PortcullisServer.ClientId,
            ["scope"] = "openid offline_access",
            ["refresh_token"] = Chosen,
        }));

        // S07: the extra member is refused (400), never ignored or adopted.
        var body = await Refusal.AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
        Assert.DoesNotContain(Chosen, body.GetRawText(), StringComparison.Ordinal);

        using var useChosen = await _http.RefreshAsync(Chosen);
        await Refusal.AssertInvalidGrantAsync(useChosen);
    }

    [Fact]
    public async Task J07_the_refresh_token_as_a_bearer_token_is_a_generic_401()
    {
        var (_, body) = await LoginFullAsync();
        using var response = await _http.GetWithTokenAsync("api/me", body.GetProperty("refresh_token").GetString()!);
        await Refusal.AssertGeneric401Async(response);
    }

    [Fact]
    public async Task J07_the_id_token_as_a_bearer_token_is_a_generic_401()
    {
        var (_, body) = await LoginFullAsync();
        var idToken = body.GetProperty("id_token").GetString()!;
        // Same issuer and key as an access token: only typ (JWT, not at+jwt) and aud tell them apart.
        Assert.Equal("JWT", Jwt.HeaderOf(idToken)["typ"]!.GetValue<string>());
        using var response = await _http.GetWithTokenAsync("api/me", idToken);
        await Refusal.AssertGeneric401Async(response);
    }

    [Fact]
    public async Task J07_an_access_token_presented_as_a_refresh_token_is_invalid_grant()
    {
        var (_, body) = await LoginFullAsync();
        var ta = body.GetProperty("access_token").GetString()!;
        using var response = await _http.RefreshAsync(ta);
        await Refusal.AssertInvalidGrantAsync(response);

        using var idAsRefresh = await _http.RefreshAsync(body.GetProperty("id_token").GetString()!);
        await Refusal.AssertInvalidGrantAsync(idAsRefresh);

        // The real refresh token still works: the refusals were for the token type.
        using var real = await _http.RefreshAsync(body.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, real.StatusCode);
    }
}
