using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The browser session ends with everything issued under it: RP-initiated logout (with and without an ID token of the
/// session), the account page's sign-out, "log out everywhere" and a password change through the API. And the
/// form_post answer runs only its own script.
/// </summary>
public sealed partial class SessionEndTests(Admin.AdminFixture fixture) : IClassFixture<Admin.AdminFixture>
{
    private const string Redirect = "https://rp.example/signin-oidc";
    private const string AfterLogout = "https://rp.example/signout-callback-oidc";
    private readonly PortcullisServer _server = fixture.Server;

    private async Task<(BrowserFlow Browser, string ClientId, string Username, System.Text.Json.JsonElement Tokens)> SignedInAppAsync()
    {
        var clientId = (await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Logout app", ["openid", "offline_access"], "public", [Redirect], [AfterLogout], FirstParty: true))).ClientId;
        var username = ClientFlows.UniqueName("se");
        await fixture.Client.RegisterOkAsync(username);
        var browser = new BrowserFlow(_server);
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge, "openid offline_access")), username);
        using var exchanged = await browser.ExchangeAsync(clientId, BrowserFlow.Query(callback)["code"], Redirect, verifier);
        Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
        return (browser, clientId, username, await exchanged.JsonAsync());
    }

    private static async Task AssertEndedAsync(BrowserFlow browser, string clientId, System.Text.Json.JsonElement tokens)
    {
        using (var me = await browser.Http.GetWithTokenAsync("api/me", tokens.GetProperty("access_token").GetString()!))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        using (var refresh = await browser.Http.RefreshAsync(tokens.GetProperty("refresh_token").GetString()!, clientId))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
        }

        using var account = await browser.GetAsync("/account");
        Assert.Equal(HttpStatusCode.Found, account.StatusCode);
        Assert.StartsWith("/signin", account.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RP_initiated_logout_with_the_sessions_ID_token_ends_it_and_returns_with_state()
    {
        var (browser, clientId, _, tokens) = await SignedInAppAsync();
        using var _ = browser;
        var url = "/connect/endsession?" + string.Join("&",
            $"id_token_hint={tokens.GetProperty("id_token").GetString()}",
            $"post_logout_redirect_uri={Uri.EscapeDataString(AfterLogout)}",
            "state=bye-1");
        using var response = await browser.GetAsync(url);
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(AfterLogout + "?state=bye-1", response.Headers.Location!.AbsoluteUri);
        await AssertEndedAsync(browser, clientId, tokens);
        var audited = await AuditNamesAsync();
        Assert.Contains("authn_signin_success", audited, StringComparer.Ordinal);
        Assert.Contains("authn_code_issued", audited, StringComparer.Ordinal);
        Assert.Contains("authn_code_redeemed", audited, StringComparer.Ordinal);
        Assert.Contains("authn_signout", audited, StringComparer.Ordinal);
    }

    [Fact]
    public async Task Logout_without_an_ID_token_asks_first_and_an_unregistered_return_uri_is_an_error_page()
    {
        var (browser, clientId, _, tokens) = await SignedInAppAsync();
        using var _ = browser;
        using (var evil = await browser.GetAsync($"/connect/endsession?client_id={clientId}&post_logout_redirect_uri={Uri.EscapeDataString("https://evil.example/")}"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, evil.StatusCode);
            Assert.Null(evil.Headers.Location);
        }

        var url = $"/connect/endsession?client_id={clientId}&post_logout_redirect_uri={Uri.EscapeDataString(AfterLogout)}&state=s2";
        using var page = await browser.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode); // a confirmation, not a silent sign-out
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Logout app", html, StringComparison.Ordinal);
        using (var me = await browser.Http.GetWithTokenAsync("api/me", tokens.GetProperty("access_token").GetString()!))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        using var confirmed = await browser.PostFormAsync(url, html, new Dictionary<string, string>(), ("decision", "signout"));
        Assert.Equal(HttpStatusCode.Found, confirmed.StatusCode);
        Assert.Equal(AfterLogout + "?state=s2", confirmed.Headers.Location!.AbsoluteUri);
        await AssertEndedAsync(browser, clientId, tokens);
    }

    [Fact]
    public async Task Log_out_everywhere_through_the_API_ends_the_browser_session_at_once()
    {
        var (browser, clientId, username, tokens) = await SignedInAppAsync();
        using var _ = browser;
        var api = await fixture.Client.LoginAsync(username);
        using (var everywhere = await fixture.Client.PostWithTokenAsync("api/me/logout-everywhere", api.AccessToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, everywhere.StatusCode);
        }

        await AssertEndedAsync(browser, clientId, tokens);
    }

    [Fact]
    public async Task The_account_page_signs_out_and_lists_and_ends_sessions()
    {
        var (browser, clientId, _, tokens) = await SignedInAppAsync();
        using var _ = browser;
        using var page = await browser.GetAsync("/account");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("This browser", html, StringComparison.Ordinal);

        using var signedOut = await browser.PostFormAsync("/account?handler=SignOut", html, new Dictionary<string, string>(), ("handler", "SignOut"));
        Assert.Equal(HttpStatusCode.Found, signedOut.StatusCode);
        await AssertEndedAsync(browser, clientId, tokens);
    }

    [Fact]
    public async Task A_form_post_answer_may_run_only_its_own_script_and_post_only_to_the_client()
    {
        var clientId = (await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Form post app", ["openid"], "public", [Redirect], FirstParty: true))).ClientId;
        var username = ClientFlows.UniqueName("fp");
        await fixture.Client.RegisterOkAsync(username);
        using var browser = new BrowserFlow(_server);
        var request = BrowserFlow.CodeRequest(clientId, Redirect, BrowserFlow.NewPkce().Challenge, "openid");
        request["response_mode"] = "form_post";
        using (await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password }))
        {
        }

        using var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains($"action=\"{Redirect}\"", html, StringComparison.Ordinal);
        var script = ScriptPattern().Match(html).Groups[1].Value;
        var hash = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(script)));
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Equal($"default-src 'none'; script-src 'sha256-{hash}'; form-action https://rp.example; frame-ancestors 'none'; base-uri 'none'", csp);
    }

    private async Task<List<string>> AuditNamesAsync()
    {
        using var response = await fixture.Client.GetWithTokenAsync("api/admin/audit?limit=500", await fixture.AdminTokenAsync());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        return [.. body.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("name").GetString()!)];
    }

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptPattern();
}
