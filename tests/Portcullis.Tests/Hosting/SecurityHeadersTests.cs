using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Every response carries the security headers, errors included; nothing invites a browser to share or render it.</summary>
public sealed class SecurityHeadersTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Hsts = "max-age=31536000; includeSubDomains";
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task T04_hsts_is_sent_on_a_401()
    {
        using var response = await _http.GetAsync("api/me");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        AssertHsts(response);
    }

    [Fact]
    public async Task T04_hsts_is_sent_on_a_404()
    {
        var (_, _, tokens) = await _http.NewUserAsync("hsts");

        using var response = await _http.GetWithTokenAsync("nope", tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "not-found");
        AssertHsts(response);
    }

    [Fact]
    public async Task T04_hsts_is_sent_on_a_400_for_malformed_json()
    {
        using var body = new StringContent("{\"username\": ", Encoding.UTF8, "application/json");

        using var response = await _http.PostAsync("api/accounts", body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        AssertHsts(response);
    }

    [Fact]
    public async Task T04_hsts_is_sent_on_a_200()
    {
        using var response = await _http.GetAsync("health/live");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertHsts(response);
    }

    [Fact]
    public async Task H01_me_has_json_content_type_and_every_security_header()
    {
        var (_, _, tokens) = await _http.NewUserAsync("hdr");

        using var response = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        AssertSecurityHeaders(response);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
    }

    // HDR-11 allows 406 or JSON; the product answers JSON (RFC 9110 §12.5.1 lets a server with one
    // representation disregard Accept), so that one answer is asserted: a 406, or HTML, fails here.
    [Fact]
    public async Task H01_me_asked_for_html_still_answers_json_never_html()
    {
        var (_, username, tokens) = await _http.NewUserAsync("html");
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/html"));

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(username, body.GetProperty("username").GetString());
        AssertSecurityHeaders(response);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
    }

    // The hosted pages (/signin, /account) share the host with the API: a browser-style request for an
    // API route without a token must still get the API's 401, not the pages' redirect to /signin.
    [Fact]
    public async Task H01_me_asked_for_html_without_a_token_is_a_json_401_not_a_redirect_to_signin()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/html"));

        using var response = await _http.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized);
        await Refusal.AssertGeneric401Async(response);
        Assert.Null(response.Headers.Location);
        AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task H01_token_response_is_json_and_never_cached()
    {
        var username = ClientFlows.UniqueName("tok");
        await _http.RegisterOkAsync(username);

        using var response = await _http.PasswordGrantAsync(username, ClientFlows.Password);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet, ignoreCase: true);
        Assert.True(response.Headers.CacheControl?.NoStore, "Cache-Control: no-store is missing on the token response.");
        Assert.Contains("no-cache", response.Headers.Pragma.Select(p => p.Name));
        AssertSecurityHeaders(response);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(string.IsNullOrEmpty(body.GetProperty("access_token").GetString()));
    }

    [Fact]
    public async Task H01_error_responses_are_problem_json_with_every_security_header()
    {
        using var response = await _http.GetAsync("api/me");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        AssertSecurityHeaders(response);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        // Always a problem+json body: an empty 401, or one of another type, fails here.
        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized);
        await Refusal.AssertGeneric401Async(response);
    }

    [Fact]
    public async Task H02_cors_preflight_from_a_foreign_origin_is_not_allowed()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "api/me");
        request.Headers.Add("Origin", "https://evil.example");
        request.Headers.Add("Access-Control-Request-Method", "GET");
        request.Headers.Add("Access-Control-Request-Headers", "authorization");

        using var response = await _http.SendAsync(request);

        // A preflight needs a 2xx and an Access-Control-Allow-Origin to succeed; neither is given.
        Assert.False(response.IsSuccessStatusCode, $"preflight got {(int)response.StatusCode}");
        AssertNoCors(response);
        AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task H02_get_with_token_from_a_foreign_origin_carries_no_cors_grant()
    {
        var (_, _, tokens) = await _http.NewUserAsync("cors");
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Add("Origin", "https://evil.example");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertNoCors(response);
    }

    private static void AssertHsts(HttpResponseMessage response) =>
        Assert.Equal(Hsts, Assert.Single(response.Headers.GetValues("Strict-Transport-Security")));

    private static void AssertNoCors(HttpResponseMessage response)
    {
        var names = response.Headers.Select(h => h.Key).Concat(response.Content.Headers.Select(h => h.Key)).ToList();
        Assert.DoesNotContain(names, n => n.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }

    internal static void AssertSecurityHeaders(HttpResponseMessage response)
    {
        AssertHsts(response);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("default-src 'none'; frame-ancestors 'none'", Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
        Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
        Assert.False(response.Headers.Contains("Server"), "A Server header is sent.");
        Assert.False(response.Headers.Contains("X-Powered-By"), "An X-Powered-By header is sent.");
        Assert.Empty(response.Headers.Server);
    }
}
