using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Every refusal of the browser sign-in, in raw HTTP (issue 18, TEST_MATRIX O01–O06, K01, K02): PKCE missing, plain
/// or wrong; redirect URIs compared exactly and a wrong one shown as a page, never redirected to; a code replayed,
/// expired or presented by another client; implicit and hybrid refused; local return URLs only; forms without their
/// antiforgery token or from another origin; the cookie's attributes.
/// </summary>
public sealed class SignInRefusalTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Redirect = "https://app.example/callback";
    private readonly PortcullisServer _server = fixture.Server;

    private async Task<string> ClientAsync(string type = "public", bool allowNoPkce = false) =>
        (await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Refusal app", ["openid", "profile", "email", "offline_access"], type, [Redirect], FirstParty: true, AllowNoPkce: allowNoPkce))).ClientId;

    private async Task<string> UserAsync()
    {
        var username = ClientFlows.UniqueName("rf");
        await fixture.Client.RegisterOkAsync(username);
        return username;
    }

    /// <summary>A browser already signed in, so authorization requests answer at once.</summary>
    private async Task<BrowserFlow> SignedInAsync(string username)
    {
        var browser = new BrowserFlow(_server);
        using var response = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password });
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        return browser;
    }

    /// <summary>
    /// A request OpenIddict finds invalid is answered on Portcullis, never redirected (RFC 6749 §4.1.2.1 allows it and
    /// OpenIddict does it for every validation error): a 400 page naming the error, no Location, no code.
    /// </summary>
    private static async Task<string> ErrorPageAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("This sign-in request was refused", html, StringComparison.Ordinal);
        Assert.DoesNotContain("code=", html, StringComparison.Ordinal);
        return html;
    }

    private static async Task<Dictionary<string, string>> ErrorSentBackAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.StartsWith(Redirect + "?", location.AbsoluteUri, StringComparison.Ordinal);
        var query = BrowserFlow.Query(location);
        Assert.False(query.ContainsKey("code"));
        await Task.CompletedTask;
        return query;
    }

    [Fact]
    public async Task O01_a_missing_challenge_and_the_plain_method_are_refused_on_an_error_page()
    {
        var clientId = await ClientAsync();
        using var browser = await SignedInAsync(await UserAsync());
        var (_, challenge) = BrowserFlow.NewPkce();

        var missing = BrowserFlow.CodeRequest(clientId, Redirect, challenge);
        missing.Remove("code_challenge");
        missing.Remove("code_challenge_method");
        using (var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(missing)))
        {
            Assert.Contains("code_challenge", await ErrorPageAsync(response), StringComparison.Ordinal);
        }

        var plain = BrowserFlow.CodeRequest(clientId, Redirect, challenge);
        plain["code_challenge_method"] = "plain";
        using (var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(plain)))
        {
            await ErrorPageAsync(response);
        }
    }

    [Fact]
    public async Task O02_a_wrong_verifier_is_invalid_grant_and_a_missing_one_invalid_request()
    {
        var clientId = await ClientAsync();
        var username = await UserAsync();
        using var browser = await SignedInAsync(username);
        var (verifier, challenge) = BrowserFlow.NewPkce();

        foreach (var wrong in new[] { BrowserFlow.NewPkce().Verifier, null })
        {
            var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge)), null);
            var code = BrowserFlow.Query(callback)["code"];
            using var response = await browser.ExchangeAsync(clientId, code, Redirect, wrong);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var body = await response.JsonAsync();
            Assert.Equal(wrong is null ? "invalid_request" : "invalid_grant", body.GetProperty("error").GetString()); // a missing verifier is a malformed request
            Assert.False(body.TryGetProperty("access_token", out _));
        }

        // The right verifier still works for a fresh code: the refusals were not luck.
        var ok = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge)), null);
        using var good = await browser.ExchangeAsync(clientId, BrowserFlow.Query(ok)["code"], Redirect, verifier);
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
    }

    [Fact]
    public async Task O02_O06_PKCE_opt_out_is_for_confidential_clients_only_needs_a_nonce_and_refuses_a_late_verifier()
    {
        Assert.NotNull(ClientAdministration.Validate(new ClientAdministration.ClientSpec("x", ["openid"], "public", [Redirect], AllowNoPkce: true)));

        var created = await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Legacy web app", ["openid"], "confidential", [Redirect], FirstParty: true, AllowNoPkce: true));
        using var browser = await SignedInAsync(await UserAsync());
        var request = BrowserFlow.CodeRequest(created.ClientId, Redirect, "unused", "openid");
        request.Remove("code_challenge");
        request.Remove("code_challenge_method");
        request.Remove("nonce");
        using (var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request)))
        {
            Assert.Contains("nonce", await ErrorPageAsync(response), StringComparison.Ordinal);
        }

        request["nonce"] = "n-123";
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), null);

        // O02: a verifier for a code that had no challenge is a downgrade attempt, refused.
        var downgraded = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), null);
        using (var refused = await browser.ExchangeAsync(created.ClientId, BrowserFlow.Query(downgraded)["code"], Redirect, BrowserFlow.NewPkce().Verifier, created.Secret))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.False((await refused.JsonAsync()).TryGetProperty("access_token", out _));
        }

        // O06: without its secret, the confidential client is not authenticated, and the code is not spent.
        var code = BrowserFlow.Query(callback)["code"];
        using (var anonymous = await browser.ExchangeAsync(created.ClientId, code, Redirect, null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("invalid_client", (await anonymous.JsonAsync()).GetProperty("error").GetString());
        }

        using var exchanged = await browser.ExchangeAsync(created.ClientId, code, Redirect, null, created.Secret);
        Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
        Assert.Equal("n-123", Tokens.Jwt.PayloadOf((await exchanged.JsonAsync()).GetProperty("id_token").GetString()!)["nonce"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("https://app.example/callback/")]
    [InlineData("https://APP.example/callback")]
    [InlineData("https://app.example/Callback")]
    [InlineData("https://app.example/callback?a=1")]
    [InlineData("https://app.example/callback/x")]
    [InlineData("https://app.example:8443/callback")]
    [InlineData("http://app.example/callback")]
    [InlineData("https://app.example@evil.example/callback")]
    [InlineData("https://evil.example/callback#https://app.example/callback")]
    [InlineData("https://evil.example/callback")]
    public async Task O04_a_redirect_uri_that_is_not_exactly_a_registered_one_is_an_error_page_and_never_a_redirect(string redirect)
    {
        var clientId = await ClientAsync();
        using var browser = await SignedInAsync(await UserAsync());
        var (_, challenge) = BrowserFlow.NewPkce();

        using var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, redirect, challenge)));
        await ErrorPageAsync(response);
    }

    [Fact]
    public async Task An_unknown_client_is_an_error_page()
    {
        using var browser = await SignedInAsync(await UserAsync());
        using var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest("app_unknown", Redirect, BrowserFlow.NewPkce().Challenge)));
        await ErrorPageAsync(response);
    }

    [Fact]
    public async Task O03_implicit_and_hybrid_response_types_are_refused_on_an_error_page()
    {
        var clientId = await ClientAsync();
        using var browser = await SignedInAsync(await UserAsync());
        foreach (var type in new[] { "token", "id_token", "id_token token", "code id_token", "code token" })
        {
            var request = BrowserFlow.CodeRequest(clientId, Redirect, BrowserFlow.NewPkce().Challenge);
            request["response_type"] = type;
            using var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request));
            var html = await ErrorPageAsync(response);
            Assert.DoesNotContain("access_token", html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task O05_a_replayed_code_is_invalid_grant_and_revokes_what_the_first_exchange_issued()
    {
        var clientId = await ClientAsync();
        using var browser = await SignedInAsync(await UserAsync());
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge)), null);
        var code = BrowserFlow.Query(callback)["code"];

        using var first = await browser.ExchangeAsync(clientId, code, Redirect, verifier);
        var tokens = await first.ReadTokensAsync();
        using (var me = await browser.Http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        using var second = await browser.ExchangeAsync(clientId, code, Redirect, verifier);
        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        Assert.Equal("invalid_grant", (await second.JsonAsync()).GetProperty("error").GetString());

        using (var me = await browser.Http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        using var refreshed = await browser.Http.RefreshAsync(tokens.RefreshToken!, clientId);
        Assert.Equal(HttpStatusCode.BadRequest, refreshed.StatusCode);
        Assert.Contains("authn_code_replay", _server.Logs.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_code_presented_by_another_client_is_refused()
    {
        var clientId = await ClientAsync();
        var other = await ClientAsync();
        using var browser = await SignedInAsync(await UserAsync());
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge)), null);

        using var response = await browser.ExchangeAsync(other, BrowserFlow.Query(callback)["code"], Redirect, verifier);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_grant", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_code_expires_after_60_seconds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await PortcullisServer.StartAsync(services: services =>
        {
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(time);
        });
        using var http = server.CreateClient();
        var username = ClientFlows.UniqueName("exp");
        await http.RegisterOkAsync(username);
        var clientId = (await BrowserFlow.RegisterClientAsync(server, new ClientAdministration.ClientSpec(
            "Expiry app", ["openid"], "public", [Redirect], FirstParty: true))).ClientId;
        using var browser = new BrowserFlow(server);
        var (verifier, challenge) = BrowserFlow.NewPkce();

        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge, "openid")), username);
        time.Advance(TimeSpan.FromSeconds(61));
        using var late = await browser.ExchangeAsync(clientId, BrowserFlow.Query(callback)["code"], Redirect, verifier);
        Assert.Equal(HttpStatusCode.BadRequest, late.StatusCode);
        Assert.Equal("invalid_grant", (await late.JsonAsync()).GetProperty("error").GetString());

        var fresh = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, Redirect, challenge, "openid")), username);
        time.Advance(TimeSpan.FromSeconds(50));
        using var inTime = await browser.ExchangeAsync(clientId, BrowserFlow.Query(fresh)["code"], Redirect, verifier);
        Assert.Equal(HttpStatusCode.OK, inTime.StatusCode);
    }

    [Theory]
    [InlineData("https://evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("javascript:alert(1)")]
    public async Task The_return_url_after_sign_in_is_local_only(string returnUrl)
    {
        var username = await UserAsync();
        using var browser = new BrowserFlow(_server);
        using var response = await browser.SubmitAsync("/signin?ReturnUrl=" + Uri.EscapeDataString(returnUrl),
            new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password });
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("/account", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task K02_a_form_without_its_antiforgery_token_or_from_another_origin_changes_nothing()
    {
        var username = await UserAsync();
        using var browser = new BrowserFlow(_server);
        using var page = await browser.GetAsync("/signin");
        var html = await page.Content.ReadAsStringAsync();
        var fields = new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password };

        using (var noToken = await browser.PostFormAsync("/signin", html, fields, withAntiforgery: false))
        {
            Assert.Equal(HttpStatusCode.BadRequest, noToken.StatusCode);
            Assert.Null(noToken.Headers.Location);
        }

        using (var crossSite = await browser.PostFormAsync("/signin", html, fields, origin: "https://evil.example"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, crossSite.StatusCode);
            Assert.Null(crossSite.Headers.Location);
        }

        Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
        using var account = await browser.GetAsync("/account");
        Assert.Equal(HttpStatusCode.Found, account.StatusCode);
        Assert.StartsWith("/signin", account.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task K02_a_consent_answer_without_its_antiforgery_token_or_from_another_origin_grants_nothing()
    {
        // The authorization request itself may be posted from the client's site (OpenID Connect Core §3.1.2.1); the
        // consent answer may not.
        var created = await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "Consent app", ["openid"], "confidential", [Redirect]));
        using var browser = await SignedInAsync(await UserAsync());
        var request = BrowserFlow.CodeRequest(created.ClientId, Redirect, BrowserFlow.NewPkce().Challenge, "openid");
        var url = BrowserFlow.AuthorizeUrl(request);
        using var page = await browser.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        var allow = ("decision", "allow");

        using (var noToken = await browser.PostFormAsync(url, html, new Dictionary<string, string>(), allow, withAntiforgery: false))
        {
            Assert.Equal(HttpStatusCode.BadRequest, noToken.StatusCode);
            Assert.Null(noToken.Headers.Location);
        }

        using (var crossSite = await browser.PostFormAsync(url, html, new Dictionary<string, string>(), allow, origin: "https://evil.example"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, crossSite.StatusCode);
            Assert.Null(crossSite.Headers.Location);
        }

        // The request posted from another site without a decision is only a request: the consent page again.
        var posted = new HttpRequestMessage(HttpMethod.Post, "/connect/authorize")
        {
            Content = new FormUrlEncodedContent(request.Select(p => new KeyValuePair<string, string>(p.Key, p.Value!))),
        };
        posted.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "cross-site");
        using (var asked = await browser.Http.SendAsync(posted))
        {
            Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
            Assert.Contains("name=\"decision\"", await asked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using var allowed = await browser.PostFormAsync(url, html, new Dictionary<string, string>(), allow);
        Assert.Equal(HttpStatusCode.Found, allowed.StatusCode);
        Assert.StartsWith(Redirect + "?code=", allowed.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
    }

    [Fact]
    public async Task K01_the_session_cookie_is_host_only_secure_httponly_and_lax_and_a_new_one_each_sign_in()
    {
        var username = await UserAsync();
        using var browser = new BrowserFlow(_server);
        string first;
        using (var response = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password }))
        {
            var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("__Host-portcullis=", StringComparison.Ordinal));
            var attributes = cookie.Split(';', StringSplitOptions.TrimEntries).Skip(1).Select(a => a.ToLowerInvariant()).ToList();
            Assert.Contains("secure", attributes);
            Assert.Contains("httponly", attributes);
            Assert.Contains("samesite=lax", attributes);
            Assert.Contains("path=/", attributes);
            Assert.DoesNotContain(attributes, a => a.StartsWith("domain", StringComparison.Ordinal));
            first = cookie.Split(';')[0];
        }

        using (var again = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password }))
        {
            var cookie = Assert.Single(again.Headers.GetValues("Set-Cookie"), c => c.StartsWith("__Host-portcullis=", StringComparison.Ordinal));
            Assert.NotEqual(first, cookie.Split(';')[0]);
        }
    }

    [Fact]
    public async Task A_wrong_password_and_an_unknown_user_get_the_same_answer()
    {
        var username = await UserAsync();
        var answers = new List<(HttpStatusCode, string)>();
        foreach (var (name, password) in new[] { (username, "wrong password entirely 123"), (ClientFlows.UniqueName("nobody"), "wrong password entirely 123") })
        {
            using var browser = new BrowserFlow(_server);
            using var response = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = name, ["Password"] = password });
            var html = await response.Content.ReadAsStringAsync();
            var error = System.Text.RegularExpressions.Regex.Match(html, "<p class=\"error\"[^>]*>([^<]*)</p>").Groups[1].Value;
            answers.Add((response.StatusCode, error));
            Assert.DoesNotContain("wrong password entirely", html, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.BadRequest, answers[0].Item1);
        Assert.Equal("The username or password is incorrect.", answers[0].Item2);
        Assert.Equal(answers[0], answers[1]);
    }

    [Fact]
    public async Task Prompt_none_without_a_session_is_login_required_and_prompt_login_asks_again()
    {
        var clientId = await ClientAsync();
        using var anonymous = new BrowserFlow(_server);
        var request = BrowserFlow.CodeRequest(clientId, Redirect, BrowserFlow.NewPkce().Challenge);
        request["prompt"] = "none";
        using (var response = await anonymous.GetAsync(BrowserFlow.AuthorizeUrl(request)))
        {
            var query = await ErrorSentBackAsync(response);
            Assert.Equal("login_required", query["error"]);
        }

        var username = await UserAsync();
        using var browser = await SignedInAsync(username);
        request["prompt"] = "login";
        using (var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request)))
        {
            Assert.Equal(HttpStatusCode.Found, response.StatusCode);
            var location = response.Headers.Location!.OriginalString;
            Assert.StartsWith("/signin?ReturnUrl=", location, StringComparison.Ordinal);
            Assert.DoesNotContain("prompt", Uri.UnescapeDataString(location), StringComparison.Ordinal); // no loop
        }

        request.Remove("prompt");
        request["max_age"] = "0";
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), username);
        Assert.True(BrowserFlow.Query(callback).ContainsKey("code"));
    }

    [Fact]
    public async Task Every_page_forbids_framing_and_loads_nothing_from_elsewhere()
    {
        var username = await UserAsync();
        using var browser = new BrowserFlow(_server);
        foreach (var path in new[] { "/signin", "/signup" })
        {
            using var response = await browser.GetAsync(path);
            AssertPageHeaders(response);
        }

        using var signedIn = await SignedInAsync(username);
        using var account = await signedIn.GetAsync("/account");
        Assert.Equal(HttpStatusCode.OK, account.StatusCode);
        AssertPageHeaders(account);

        static void AssertPageHeaders(HttpResponseMessage response)
        {
            Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
            var csp = response.Headers.GetValues("Content-Security-Policy").Single();
            Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
            Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
            Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        }
    }
}
