using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tests.Tokens;
using Client = Portcullis.Tests.SignIn.OidcConformanceKit.Client;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The OpenID Foundation's RP-Initiated Logout OP plan (<c>oidcc-rp-initiated-logout-certification-test-plan</c>):
/// the suite signs in, then calls <c>/connect/endsession</c> with each combination of <c>id_token_hint</c>,
/// <c>post_logout_redirect_uri</c> and <c>state</c>, and checks whether the session ended and where the browser went.
/// </summary>
public sealed class OidcConformanceLogoutTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Refused = "This sign-out request was refused";
    private readonly OidcConformanceKit _kit = new(fixture.Server, fixture.Client);

    private sealed record SignedIn(Client Client, BrowserFlow Browser, string IdToken, string AccessToken) : IDisposable
    {
        public void Dispose() => Browser.Dispose();
    }

    private async Task<SignedIn> SignedInAsync()
    {
        var client = await _kit.ClientAsync("Logout RP");
        var (_, username) = await _kit.UserAsync();
        var browser = new BrowserFlow(_kit.Server);
        var request = OidcConformanceKit.Request(client);
        var tokens = await _kit.CodeFlowAsync(browser, client, request, username);
        await _kit.ValidIdTokenAsync(tokens, client, request["nonce"]);
        return new SignedIn(client, browser, tokens.GetProperty("id_token").GetString()!, tokens.GetProperty("access_token").GetString()!);
    }

    private static string EndSessionUrl(params (string Name, string? Value)[] parameters) =>
        QueryHelpers.AddQueryString("/connect/endsession", parameters.Where(p => p.Value is not null).Select(p => new KeyValuePair<string, string?>(p.Name, p.Value)));

    /// <summary>Whether the browser session still stands: the suite's prompt=none authorization after logout.</summary>
    private static async Task<bool> StillSignedInAsync(SignedIn s)
    {
        var request = OidcConformanceKit.Request(s.Client);
        request["prompt"] = "none";
        using var response = await s.Browser.GetAsync(BrowserFlow.AuthorizeUrl(request));
        var query = BrowserFlow.Query(response.Headers.Location!);
        if (query.TryGetValue("error", out var error))
        {
            Assert.Equal("login_required", error);
            return false;
        }

        Assert.True(query.ContainsKey("code"));
        return true;
    }

    private static async Task AssertEndedAsync(SignedIn s)
    {
        Assert.False(await StillSignedInAsync(s), "the browser session was not ended");
        using var userInfo = await OidcConformanceKit.UserInfoAsync(s.Browser, s.AccessToken, HttpMethod.Get);
        Assert.Equal(HttpStatusCode.Unauthorized, userInfo.StatusCode);
    }

    private static async Task AssertNotEndedAsync(SignedIn s)
    {
        Assert.True(await StillSignedInAsync(s), "the browser session was ended");
        using var userInfo = await OidcConformanceKit.UserInfoAsync(s.Browser, s.AccessToken, HttpMethod.Get);
        Assert.Equal(HttpStatusCode.OK, userInfo.StatusCode);
    }

    /// <summary>The confirmation page (the RP could not be identified as this session's), confirmed.</summary>
    private static async Task<HttpResponseMessage> ConfirmAsync(SignedIn s, string url)
    {
        using var page = await s.Browser.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Sign out?", html, StringComparison.Ordinal);
        return await s.Browser.PostFormAsync(url, html, new Dictionary<string, string>(), ("decision", "signout"));
    }

    private static async Task AssertSignedOutPageAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains("You are signed out", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout()
    {
        // A 128-character state, as the suite sends, comes back unchanged.
        using var s = await SignedInAsync();
        var state = string.Concat(Enumerable.Range(0, 4).Select(_ => Guid.NewGuid().ToString("N")));
        Assert.Equal(128, state.Length);
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", s.IdToken), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout), ("state", state)));
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(OidcConformanceKit.AfterLogout + "?state=" + state, response.Headers.Location!.AbsoluteUri);
        await AssertEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_bad_id_token_hint()
    {
        // A hint signed by a key that is not the server's.
        using var s = await SignedInAsync();
        var payload = Jwt.PayloadOf(s.IdToken);
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = Jwt.SignEs256(Jwt.HeaderOf(s.IdToken), payload, attacker);
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", forged), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout), ("state", "bad")));
        await OidcConformanceKit.ErrorPageAsync(response, Refused);
        await AssertNotEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_modified_id_token_hint()
    {
        // The real token with its payload altered and its signature kept.
        using var s = await SignedInAsync();
        var parts = s.IdToken.Split('.');
        var payload = Jwt.PayloadOf(s.IdToken);
        payload["sub"] = Guid.NewGuid().ToString();
        var modified = parts[0] + "." + Jwt.Part(payload) + "." + parts[2];
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", modified), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout), ("state", "mod")));
        await OidcConformanceKit.ErrorPageAsync(response, Refused);
        await AssertNotEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_bad_post_logout_redirect_uri()
    {
        using var s = await SignedInAsync();
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", s.IdToken), ("post_logout_redirect_uri", "https://rp.conformance.example/not_registered"), ("state", "x")));
        await OidcConformanceKit.ErrorPageAsync(response, Refused);
        await AssertNotEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri()
    {
        using var s = await SignedInAsync();
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", s.IdToken), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout + "?foo=bar"), ("state", "x")));
        await OidcConformanceKit.ErrorPageAsync(response, Refused);
        await AssertNotEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_no_id_token_hint()
    {
        // As the suite sends it: post_logout_redirect_uri and state, nothing saying which client asks. The person
        // confirms, and is not sent to that URI (the suite fails the module if it is called).
        using var s = await SignedInAsync();
        var url = EndSessionUrl(("post_logout_redirect_uri", OidcConformanceKit.AfterLogout), ("state", "nohint"));
        using var confirmed = await ConfirmAsync(s, url);
        await AssertSignedOutPageAsync(confirmed);
        await AssertEndedAsync(s);

        // With client_id (RP-Initiated Logout §2), the client is known and its registered URI is used, with the state.
        using var again = await SignedInAsync();
        var named = EndSessionUrl(("client_id", again.Client.ClientId), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout), ("state", "named"));
        using var back = await ConfirmAsync(again, named);
        Assert.Equal(HttpStatusCode.Found, back.StatusCode);
        Assert.Equal(OidcConformanceKit.AfterLogout + "?state=named", back.Headers.Location!.AbsoluteUri);
        await AssertEndedAsync(again);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_no_params()
    {
        using var s = await SignedInAsync();
        using var confirmed = await ConfirmAsync(s, "/connect/endsession");
        await AssertSignedOutPageAsync(confirmed);
        await AssertEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_no_post_logout_redirect_uri()
    {
        using var s = await SignedInAsync();
        using var response = await s.Browser.GetAsync(EndSessionUrl(("id_token_hint", s.IdToken), ("state", "nowhere")));
        await AssertSignedOutPageAsync(response);
        await AssertEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_no_state()
    {
        using var s = await SignedInAsync();
        using var response = await s.Browser.GetAsync(EndSessionUrl(
            ("id_token_hint", s.IdToken), ("post_logout_redirect_uri", OidcConformanceKit.AfterLogout)));
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(OidcConformanceKit.AfterLogout, response.Headers.Location!.AbsoluteUri);
        await AssertEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_only_state()
    {
        // State alone identifies nobody and has nowhere to go: the person confirms and stays on Portcullis.
        using var s = await SignedInAsync();
        using var confirmed = await ConfirmAsync(s, EndSessionUrl(("state", "only")));
        await AssertSignedOutPageAsync(confirmed);
        await AssertEndedAsync(s);
    }

    [Fact]
    public async Task oidcc_rp_initiated_logout_discovery_endpoint_verification()
    {
        using var response = await fixture.Client.GetAsync(".well-known/openid-configuration");
        var config = await response.JsonAsync();
        var endSession = new Uri(config.GetProperty("end_session_endpoint").GetString()!);
        Assert.Equal("https", endSession.Scheme);
        Assert.Equal(new Uri(config.GetProperty("issuer").GetString()!).Authority, endSession.Authority);
        using var page = await fixture.Client.GetAsync(endSession.PathAndQuery.TrimStart('/'));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode); // it answers (nothing to end without a session)
    }
}
