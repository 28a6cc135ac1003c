using System.Net;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>A server that lets one HTTPS origin and one loopback development origin call it from the browser.</summary>
public sealed class CorsFixture : ServerFixture
{
    public const string Allowed = "https://app.example";
    public const string LocalDevelopment = "http://localhost:5173";

    protected override Task<Dictionary<string, string?>?> SettingsAsync() => Task.FromResult<Dictionary<string, string?>?>(new()
    {
        ["Cors:Origins:0"] = Allowed,
        ["Cors:Origins:1"] = LocalDevelopment,
    });
}

/// <summary>
/// HDR-06 with CORS on: an origin on the allowlist, written exactly as the browser sends it, gets its own origin back
/// with <c>Vary: Origin</c> on the API and the OAuth endpoints a browser application calls; every other origin (H02),
/// path, or OPTIONS that is not a preflight is answered as with CORS off (HDR-07).
/// </summary>
public sealed class CorsTests(CorsFixture fixture) : IClassFixture<CorsFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private static HttpRequestMessage Preflight(string path, string origin, string method = "GET", string? headers = "authorization")
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        if (headers is not null)
        {
            request.Headers.Add("Access-Control-Request-Headers", headers);
        }

        return request;
    }

    [Fact]
    public async Task H02_a_preflight_from_a_foreign_origin_gets_no_cors_grant_when_cors_is_on()
    {
        using var request = Preflight("api/me", "https://evil.example");

        using var response = await _http.SendAsync(request);

        Assert.False(response.IsSuccessStatusCode, $"preflight got {(int)response.StatusCode}");
        AssertNoCors(response);
        SecurityHeadersTests.AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task H02_a_get_with_a_token_from_a_foreign_origin_gets_no_cors_grant_when_cors_is_on()
    {
        var (_, _, tokens) = await _http.NewUserAsync("cors");
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Add("Origin", "https://evil.example");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertNoCors(response);
    }

    [Theory]
    [InlineData("https://app.example.evil.example")] // a suffix or prefix match would let these in
    [InlineData("https://evil-app.example")]
    [InlineData("https://APP.example")] // not as a browser sends it: compared byte for byte
    [InlineData("http://app.example")] // another scheme is another origin
    [InlineData("https://app.example:8443")] // another port too
    [InlineData("null")]
    public async Task HDR06_only_an_exact_listed_origin_is_echoed(string origin)
    {
        using var preflight = Preflight("api/me", origin);
        using var preflightResponse = await _http.SendAsync(preflight);
        using var get = new HttpRequestMessage(HttpMethod.Get, ".well-known/openid-configuration");
        get.Headers.Add("Origin", origin);
        using var getResponse = await _http.SendAsync(get);

        AssertNoCors(preflightResponse);
        AssertNoCors(getResponse);
        Assert.Equal(HttpStatusCode.OK, getResponse.StatusCode);
    }

    [Theory]
    [InlineData("api/me", "GET")]
    [InlineData("api/accounts", "POST")]
    [InlineData("connect/token", "POST")]
    [InlineData("connect/revoke", "POST")]
    [InlineData("connect/userinfo", "GET")]
    [InlineData(".well-known/openid-configuration", "GET")]
    [InlineData(".well-known/jwks", "GET")]
    public async Task HDR06_a_preflight_from_a_listed_origin_is_granted_with_vary_origin(string path, string method)
    {
        using var request = Preflight(path, CorsFixture.Allowed, method, "authorization,content-type");

        using var response = await _http.SendAsync(request);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(CorsFixture.Allowed, Single(response, "Access-Control-Allow-Origin"));
        Assert.Contains(method, Single(response, "Access-Control-Allow-Methods").Split(','));
        var allowedHeaders = Single(response, "Access-Control-Allow-Headers").ToLowerInvariant().Split(',');
        Assert.Contains("authorization", allowedHeaders);
        Assert.Contains("content-type", allowedHeaders);
        Assert.Equal("600", Single(response, "Access-Control-Max-Age"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"), "credentials are allowed only when Cors:AllowCredentials says so");
        Assert.Contains("Origin", response.Headers.Vary);
        SecurityHeadersTests.AssertSecurityHeaders(response);
    }

    [Fact]
    public async Task HDR06_a_preflight_asking_for_a_method_or_header_not_allowed_gets_no_grant_for_it()
    {
        using var request = Preflight("api/me", CorsFixture.Allowed, "PROPFIND", "x-custom");

        using var response = await _http.SendAsync(request);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Methods") && Single(response, "Access-Control-Allow-Methods").Contains("PROPFIND", StringComparison.Ordinal));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Headers") && Single(response, "Access-Control-Allow-Headers").Contains("x-custom", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task HDR06_the_actual_request_from_a_listed_origin_carries_its_origin_vary_and_the_readable_headers()
    {
        var (_, _, tokens) = await _http.NewUserAsync("corsok");
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Add("Origin", CorsFixture.LocalDevelopment);

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(CorsFixture.LocalDevelopment, Single(response, "Access-Control-Allow-Origin"));
        Assert.Contains("Origin", response.Headers.Vary);
        Assert.Single(response.Headers.Vary, v => v == "Origin");
        Assert.Contains("WWW-Authenticate", Single(response, "Access-Control-Expose-Headers").Split(','));
    }

    [Fact]
    public async Task HDR06_a_refusal_is_readable_by_a_listed_origin()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me");
        request.Headers.Add("Origin", CorsFixture.Allowed);

        using var response = await _http.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal(CorsFixture.Allowed, Single(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task HDR06_a_covered_answer_varies_by_origin_even_without_one()
    {
        using var response = await _http.GetAsync(".well-known/openid-configuration");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Origin", response.Headers.Vary);
        AssertNoCors(response);
    }

    [Theory]
    [InlineData("health/live")]
    [InlineData("signin")]
    public async Task HDR06_paths_a_browser_application_does_not_call_get_no_cors_grant(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Origin", CorsFixture.Allowed);
        using var preflight = Preflight(path, CorsFixture.Allowed);

        using var response = await _http.SendAsync(request);
        using var preflightResponse = await _http.SendAsync(preflight);

        // (The status is whatever OPTIONS gets there with CORS off: a sign-in page answers it like a GET.)
        AssertNoCors(response);
        AssertNoCors(preflightResponse);
    }

    [Fact]
    public async Task HDR07_an_options_request_that_is_not_a_preflight_is_answered_as_with_cors_off()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "api/me");
        request.Headers.Add("Origin", CorsFixture.Allowed);

        using var response = await _http.SendAsync(request);

        Assert.False(response.IsSuccessStatusCode, $"OPTIONS got {(int)response.StatusCode}");
        Assert.False(response.Headers.Contains("Access-Control-Allow-Methods"));
    }

    private static string Single(HttpResponseMessage response, string header) => Assert.Single(response.Headers.GetValues(header));

    internal static void AssertNoCors(HttpResponseMessage response)
    {
        var names = response.Headers.Select(h => h.Key).Concat(response.Content.Headers.Select(h => h.Key)).ToList();
        Assert.DoesNotContain(names, n => n.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>HDR-06: a CORS setting broader than an exact origin stops start-up with one line naming the key and the fix.</summary>
public sealed class CorsSettingsTests : IAsyncDisposable
{
    private readonly string _dataDirectory = HostRun.NewDataDirectory();
    private readonly int _port = HostRun.FreePort();

    public async ValueTask DisposeAsync() => await HostRun.DeleteQuietlyAsync(_dataDirectory);

    [Theory]
    [InlineData("*", "wildcard")]
    [InlineData("https://*.example", "wildcard")]
    [InlineData("null", "never allowed")]
    [InlineData("https://app.example/", "write 'https://app.example'")]
    [InlineData("https://app.example/spa", "write 'https://app.example'")]
    [InlineData("https://app.example?x=1", "write 'https://app.example'")]
    [InlineData("https://App.Example", "write 'https://app.example'")]
    [InlineData("https://app.example:443", "write 'https://app.example'")]
    [InlineData("http://app.example", "https://")]
    [InlineData("http://192.168.1.10:3000", "https://")]
    [InlineData("ftp://app.example", "not an origin")]
    [InlineData("app.example", "not an origin")]
    [InlineData("", "not an origin")]
    public void HDR06_an_entry_that_is_not_an_exact_origin_is_refused(string origin, string says)
    {
        var result = new CrossOriginOptionsValidator().Validate(null, new CrossOriginOptions { Origins = [origin] });

        var failure = Assert.Single(result.Failures!);
        Assert.StartsWith("Cors:Origins:0 ", failure, StringComparison.Ordinal);
        Assert.Contains(says, failure, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', failure);
    }

    [Theory]
    [InlineData("https://app.example")]
    [InlineData("https://app.example:8443")]
    [InlineData("https://xn--bcher-kva.example")]
    [InlineData("http://localhost:5173")]
    [InlineData("http://127.0.0.1:3000")]
    [InlineData("http://[::1]:3000")]
    public void HDR06_an_exact_https_origin_or_a_loopback_http_one_is_accepted(string origin)
    {
        var result = new CrossOriginOptionsValidator().Validate(null, new CrossOriginOptions { Origins = [origin] });

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void HDR06_credentials_without_origins_wildcard_methods_and_headers_are_refused_all_at_once()
    {
        var result = new CrossOriginOptionsValidator().Validate(null, new CrossOriginOptions
        {
            AllowCredentials = true,
            Methods = ["*"],
            Headers = ["*"],
            PreflightMaxAge = TimeSpan.FromDays(1),
        });

        Assert.Collection(result.Failures!,
            f => Assert.StartsWith("Cors:AllowCredentials ", f, StringComparison.Ordinal),
            f => Assert.StartsWith("Cors:Methods:0 ", f, StringComparison.Ordinal),
            f => Assert.StartsWith("Cors:Headers:0 ", f, StringComparison.Ordinal),
            f => Assert.StartsWith("Cors:PreflightMaxAge ", f, StringComparison.Ordinal));
    }

    [Fact]
    public async Task HDR06_a_wildcard_origin_stops_start_up_and_nothing_listens()
    {
        var settings = HostRun.Settings(_dataDirectory, _port, ("Cors:Origins:0", "https://app.example"), ("Cors:Origins:1", "*"), ("Cors:AllowCredentials", "true"));

        var failure = await HostRun.StartFailsAsync(settings);

        var validation = Assert.IsType<OptionsValidationException>(failure);
        var line = Assert.Single(validation.Failures);
        Assert.StartsWith("Cors:Origins:1 ('*') ", line, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }
}
