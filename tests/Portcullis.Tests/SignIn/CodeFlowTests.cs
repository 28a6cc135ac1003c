using System.Net;
using System.Text.Json;
using Portcullis.Admin;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tests.Tokens;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The authorization-code flow with PKCE through the real pages and endpoints, in raw HTTP: a public single-page-app
/// client end to end with refresh rotation, and a confidential third-party client through consent.
/// </summary>
public sealed class CodeFlowTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string SpaRedirect = "https://spa.example/callback";
    private readonly PortcullisServer _server = fixture.Server;

    private async Task<string> PublicClientAsync(bool firstParty = true) =>
        (await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Single page app", ["openid", "profile", "email", "offline_access"], "public", [SpaRedirect], ["https://spa.example/"], FirstParty: firstParty))).ClientId;

    private async Task<(Guid Id, string Username)> NewUserAsync()
    {
        var username = ClientFlows.UniqueName("cf");
        return (await fixture.Client.RegisterOkAsync(username), username);
    }

    [Fact]
    public async Task A_public_client_signs_a_person_in_with_PKCE_and_rotates_its_refresh_token()
    {
        var clientId = await PublicClientAsync();
        var (userId, username) = await NewUserAsync();
        using var browser = new BrowserFlow(_server);
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var request = BrowserFlow.CodeRequest(clientId, SpaRedirect, challenge);

        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), username);
        Assert.Equal(SpaRedirect, callback.GetLeftPart(UriPartial.Path));
        var query = BrowserFlow.Query(callback);
        Assert.Equal(request["state"], query["state"]);
        Assert.Equal(_server.BaseAddress.AbsoluteUri, query["iss"]); // RFC 9207
        Assert.False(query.ContainsKey("access_token"));

        using var exchanged = await browser.ExchangeAsync(clientId, query["code"], SpaRedirect, verifier);
        Assert.True(exchanged.StatusCode == HttpStatusCode.OK, await exchanged.Content.ReadAsStringAsync());
        var body = await exchanged.JsonAsync();
        var idToken = Jwt.PayloadOf(body.GetProperty("id_token").GetString()!);
        Assert.Equal(userId.ToString(), idToken["sub"]!.GetValue<string>());
        Assert.Equal(request["nonce"], idToken["nonce"]!.GetValue<string>());
        Assert.Equal(clientId, idToken["aud"]!.GetValue<string>());
        Assert.InRange(idToken["auth_time"]!.GetValue<long>(), DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(["pwd"], idToken["amr"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Null(idToken["email"]); // profile data comes from userinfo

        var access = body.GetProperty("access_token").GetString()!;
        using (var me = await browser.Http.GetWithTokenAsync("api/me", access))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        using (var userInfo = await browser.Http.GetWithTokenAsync("connect/userinfo", access))
        {
            Assert.Equal(HttpStatusCode.OK, userInfo.StatusCode);
            var claims = await userInfo.JsonAsync();
            Assert.Equal(userId.ToString(), claims.GetProperty("sub").GetString());
            Assert.Equal(username, claims.GetProperty("preferred_username").GetString());
            Assert.Equal($"{username}@example.com", claims.GetProperty("email").GetString());
            Assert.False(claims.GetProperty("email_verified").GetBoolean());
        }

        // Rotation: the new refresh token works, the old one is spent and its reuse ends the session.
        var refresh = body.GetProperty("refresh_token").GetString()!;
        using var rotated = await browser.Http.RefreshAsync(refresh, clientId);
        var next = await rotated.ReadTokensAsync();
        Assert.NotEqual(refresh, next.RefreshToken);
        using (var again = await browser.Http.RefreshAsync(refresh, clientId))
        {
            Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
            Assert.Equal("invalid_grant", (await again.JsonAsync()).GetProperty("error").GetString());
        }

        using (var after = await browser.Http.GetWithTokenAsync("api/me", next.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        }
    }

    [Fact]
    public async Task Userinfo_answers_by_scope_only()
    {
        var clientId = await PublicClientAsync();
        var (_, username) = await NewUserAsync();
        using var browser = new BrowserFlow(_server);
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, SpaRedirect, challenge, scope: "openid")), username);
        using var exchanged = await browser.ExchangeAsync(clientId, BrowserFlow.Query(callback)["code"], SpaRedirect, verifier);
        var body = await exchanged.JsonAsync();
        Assert.False(body.TryGetProperty("refresh_token", out _)); // no offline_access, no refresh token

        using var userInfo = await browser.Http.GetWithTokenAsync("connect/userinfo", body.GetProperty("access_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, userInfo.StatusCode);
        var claims = await userInfo.JsonAsync();
        Assert.Equal(["sub"], claims.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public async Task A_third_party_client_gets_a_code_only_after_consent_and_a_denial_goes_back_as_access_denied()
    {
        var created = await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Third Party Shop", ["openid", "orders"], "confidential", ["https://shop.example/cb"]));
        var (userId, username) = await NewUserAsync();
        using var browser = new BrowserFlow(_server);
        var (verifier, challenge) = BrowserFlow.NewPkce();

        // Denied: back to the client with access_denied and the state, no code.
        var denyRequest = BrowserFlow.CodeRequest(created.ClientId, "https://shop.example/cb", challenge, "openid orders");
        var denied = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(denyRequest), username, allowConsent: false);
        var deniedQuery = BrowserFlow.Query(denied);
        Assert.Equal("access_denied", deniedQuery["error"]);
        Assert.Equal(denyRequest["state"], deniedQuery["state"]);
        Assert.False(deniedQuery.ContainsKey("code"));

        // The consent page names the client and the scopes, and sends its answer back here.
        var request = BrowserFlow.CodeRequest(created.ClientId, "https://shop.example/cb", challenge, "openid orders");
        using (var page = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request)))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("Third Party Shop", html, StringComparison.Ordinal);
            Assert.Contains("orders", html, StringComparison.Ordinal);
            Assert.Contains("form-action 'self' https://shop.example", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        }

        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), username: null);
        var code = BrowserFlow.Query(callback)["code"];
        using var exchanged = await browser.ExchangeAsync(created.ClientId, code, "https://shop.example/cb", verifier, created.Secret);
        Assert.True(exchanged.StatusCode == HttpStatusCode.OK, await exchanged.Content.ReadAsStringAsync());
        var access = Jwt.PayloadOf((await exchanged.JsonAsync()).GetProperty("access_token").GetString()!);
        Assert.Equal(userId.ToString(), access["sub"]!.GetValue<string>());
        Assert.Contains("orders", access["scope"]!.GetValue<string>().Split(' '));

        // Consent is remembered: the next request goes straight back with a code.
        using var next = await browser.GetAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(created.ClientId, "https://shop.example/cb", challenge, "openid orders")));
        Assert.Equal(HttpStatusCode.Found, next.StatusCode);
        Assert.StartsWith("https://shop.example/cb?code=", next.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
    }
}
