using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>A server whose operator published the API reference (<c>Api:PublicDocs=true</c>).</summary>
public sealed class PublicDocsFixture : ServerFixture
{
    protected override Task<Dictionary<string, string?>?> SettingsAsync() =>
        Task.FromResult<Dictionary<string, string?>?>(new() { ["Api:PublicDocs"] = "true" });
}

/// <summary>
/// HDR-13 with the API reference: by default the document is for signed-in callers and there is no page; with
/// <c>Api:PublicDocs</c> both are public. The document describes the OAuth endpoints and how to authenticate.
/// </summary>
public sealed class ApiReferenceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task HDR13_by_default_the_document_needs_a_token_and_no_page_is_served()
    {
        using var anonymous = await _http.GetAsync("openapi/v1.json");
        var (_, _, tokens) = await _http.NewUserAsync("docs");
        using var signedIn = await _http.GetWithTokenAsync("openapi/v1.json", tokens.AccessToken);
        using var page = await _http.GetWithTokenAsync("openapi/v1", tokens.AccessToken);
        using var script = await _http.GetWithTokenAsync("openapi/scalar.js", tokens.AccessToken);

        await Refusal.AssertGeneric401Async(anonymous);
        Assert.Equal(HttpStatusCode.OK, signedIn.StatusCode);
        await ProblemAssert.IsProblemAsync(page, HttpStatusCode.NotFound, "not-found");
        await ProblemAssert.IsProblemAsync(script, HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task The_document_lists_the_OAuth_endpoints_and_both_security_schemes()
    {
        var (_, _, tokens) = await _http.NewUserAsync("docs");
        using var response = await _http.GetWithTokenAsync("openapi/v1.json", tokens.AccessToken);
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var paths = document.GetProperty("paths");

        var token = paths.GetProperty("/connect/token").GetProperty("post");
        var form = token.GetProperty("requestBody").GetProperty("content").GetProperty("application/x-www-form-urlencoded").GetProperty("schema");
        Assert.Equal("grant_type", Assert.Single(form.GetProperty("required").EnumerateArray()).GetString());
        Assert.True(form.GetProperty("properties").TryGetProperty("code_verifier", out _));
        Assert.True(paths.GetProperty("/connect/revoke").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/connect/introspect").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/connect/userinfo").TryGetProperty("get", out var userInfo));
        Assert.True(paths.GetProperty("/connect/authorize").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/.well-known/openid-configuration").TryGetProperty("get", out _));

        var schemes = document.GetProperty("components").GetProperty("securitySchemes");
        var bearer = schemes.GetProperty("bearer");
        Assert.Equal("http", bearer.GetProperty("type").GetString());
        Assert.Equal("bearer", bearer.GetProperty("scheme").GetString());
        Assert.Equal("JWT", bearer.GetProperty("bearerFormat").GetString());
        var flows = schemes.GetProperty("oauth2").GetProperty("flows");
        var tokenUrl = new Uri(fixture.Server.BaseAddress, "connect/token").AbsoluteUri;
        Assert.Equal(tokenUrl, flows.GetProperty("authorizationCode").GetProperty("tokenUrl").GetString());
        Assert.Equal(new Uri(fixture.Server.BaseAddress, "connect/authorize").AbsoluteUri, flows.GetProperty("authorizationCode").GetProperty("authorizationUrl").GetString());
        Assert.Equal(tokenUrl, flows.GetProperty("clientCredentials").GetProperty("tokenUrl").GetString());
        Assert.Equal(tokenUrl, flows.GetProperty("password").GetProperty("tokenUrl").GetString());

        // Operations that take a token say so; the anonymous ones (registration, the token endpoint) do not.
        Assert.Equal(["bearer", "oauth2"], SchemesOf(paths.GetProperty("/api/me").GetProperty("get")));
        Assert.Equal(["bearer", "oauth2"], SchemesOf(userInfo));
        Assert.Empty(SchemesOf(paths.GetProperty("/api/accounts").GetProperty("post")));
        Assert.Empty(SchemesOf(token));
    }

    private static string[] SchemesOf(JsonElement operation) =>
        operation.TryGetProperty("security", out var security)
            ? [.. security.EnumerateArray().SelectMany(r => r.EnumerateObject().Select(p => p.Name))]
            : [];

    [Theory]
    [InlineData("Development", true)]
    [InlineData("Production", false)]
    [InlineData("Test", false)]
    public async Task Public_docs_default_to_on_in_Development_only(string environment, bool expected)
    {
        var dataDirectory = HostRun.NewDataDirectory();
        try
        {
            await using var app = PortcullisHost.CreateBuilder(new Dictionary<string, string?> { ["Storage:DataDirectory"] = dataDirectory }, environment).Build();

            Assert.Equal(expected, app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.PublicDocs);
        }
        finally
        {
            await HostRun.DeleteQuietlyAsync(dataDirectory);
        }
    }
}

/// <summary>With <c>Api:PublicDocs=true</c>: the document and Scalar's page without a token, the page's scripts from the binary under a nonce.</summary>
[Collection(BrowserTests.Name)]
public sealed partial class PublicApiReferenceTests(PublicDocsFixture fixture) : IClassFixture<PublicDocsFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task HDR13_with_public_docs_the_document_is_served_without_a_token()
    {
        using var response = await _http.GetAsync("openapi/v1.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(document.GetProperty("paths").TryGetProperty("/connect/token", out _));
    }

    [Fact]
    public async Task The_page_loads_only_this_origins_scripts_each_with_a_fresh_nonce_and_no_unsafe_inline_script()
    {
        using var first = await _http.GetAsync("openapi/v1");
        using var second = await _http.GetAsync("openapi/v1");
        var html = await first.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("text/html", first.Content.Headers.ContentType?.MediaType);
        var policy = Assert.Single(first.Headers.GetValues("Content-Security-Policy"));
        var nonce = Nonce().Match(policy).Groups[1].Value;
        Assert.NotEmpty(nonce);
        Assert.NotEqual(nonce, Nonce().Match(Assert.Single(second.Headers.GetValues("Content-Security-Policy"))).Groups[1].Value);
        var scriptSource = policy.Split(';').Select(d => d.Trim()).Single(d => d.StartsWith("script-src ", StringComparison.Ordinal));
        Assert.DoesNotContain("unsafe", scriptSource, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", policy, StringComparison.Ordinal);
        // Every script tag carries the nonce, and nothing is loaded from another origin (no CDN).
        var scripts = ScriptTag().Matches(html);
        Assert.Equal(3, scripts.Count);
        Assert.All(scripts, s => Assert.Contains($"nonce=\"{nonce}\"", s.Value, StringComparison.Ordinal));
        Assert.DoesNotContain("//", string.Concat(SourceAttribute().Matches(html).Select(m => m.Groups[1].Value)), StringComparison.Ordinal);
        Assert.Equal("no-store", first.Headers.CacheControl?.ToString());

        using var script = await _http.GetAsync("openapi/scalar.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_Scalar_page_renders_in_chromium_with_no_console_error_and_no_CSP_violation()
    {
        await using var browser = await Browser.LaunchAsync(fixture.Server.Certificate);
        var page = await browser.NewPageAsync();

        var response = await page.GotoAsync(new Uri(fixture.Server.BaseAddress, "openapi/v1").AbsoluteUri);

        Assert.Equal((int)HttpStatusCode.OK, response!.Status);
        // Rendered from the document: an operation of the OAuth endpoints the transformer added.
        await Microsoft.Playwright.Assertions.Expect(page.GetByText("Introspect a token").First).ToBeVisibleAsync();
        await page.WaitForTimeoutAsync(500); // late errors (a blocked font or fetch) are reported after rendering
        browser.AssertNoProblems();
    }

    [GeneratedRegex("'nonce-([^']+)'")]
    private static partial Regex Nonce();

    [GeneratedRegex("<script[^>]*>")]
    private static partial Regex ScriptTag();

    [GeneratedRegex("(?:src|href)=\"([^\"]*)\"")]
    private static partial Regex SourceAttribute();
}
