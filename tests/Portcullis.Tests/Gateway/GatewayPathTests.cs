using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Gateway;

/// <summary>
/// RATE-03 / AZ-01 for the gateway: path tricks cannot reach an upstream path under a weaker policy. Requests are
/// sent with the raw path preserved (no client-side canonicalization); /public is anonymous, /admin needs admin.
/// </summary>
public sealed class GatewayPathTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private async Task<HttpResponseMessage> RawGetAsync(string rawPath, string? token, bool http2 = false)
    {
        var uri = new Uri(fixture.Server.BaseAddress.AbsoluteUri.TrimEnd('/') + rawPath, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (http2)
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return await _http.SendWithTokenAsync(request, token);
    }

    /// <summary>The status, or null when the server reset the HTTP/2 stream (Kestrel does for a NUL in the path).</summary>
    private async Task<HttpStatusCode?> StatusOrResetAsync(string rawPath, string? token, bool http2)
    {
        try
        {
            using var response = await RawGetAsync(rawPath, token, http2);
            return response.StatusCode;
        }
        catch (HttpRequestException ex) when (http2 && ex.HttpRequestError == HttpRequestError.HttpProtocolError)
        {
            return null;
        }
    }

    [Theory]
    [InlineData("/public/..%2Fadmin/x")]
    [InlineData("/public/..%2fadmin/x")]
    [InlineData("/public/%2e%2e/admin/x")]
    [InlineData("/public/%2E%2E%2Fadmin/x")]
    [InlineData("/public/../admin/x")]
    [InlineData("/public/./../admin/x")]
    [InlineData("/public//admin/x")]
    [InlineData("/public/x%5C..%5Cadmin")]
    [InlineData("/public/..;/admin/x")]
    [InlineData("/public/%252e%252e/admin/x")]
    [InlineData("/public/%252F..%252Fadmin")]
    [InlineData("/public/x%00/admin")]
    [InlineData("/admin%2Fx")]
    public async Task RATE03_path_variants_never_reach_an_admin_path_under_the_public_policy(string rawPath)
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var before = fixture.Upstream.Requests;

        foreach (var http2 in new[] { false, true })
        {
            var anonymous = await StatusOrResetAsync(rawPath, null, http2);
            var asUser = await StatusOrResetAsync(rawPath, tokens.AccessToken, http2);

            // Refused as a bad path (400, or the HTTP/2 stream reset by the server), or resolved by the server to
            // /admin and so held to its policy (401/403), or matching nothing (401/404).
            Assert.True(anonymous is null or HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized or HttpStatusCode.NotFound,
                $"{rawPath} anonymous (HTTP/{(http2 ? 2 : 1)}): {anonymous}");
            Assert.True(asUser is null or HttpStatusCode.BadRequest or HttpStatusCode.Forbidden or HttpStatusCode.NotFound,
                $"{rawPath} as user (HTTP/{(http2 ? 2 : 1)}): {asUser}");
        }

        Assert.Equal(before, fixture.Upstream.Requests);
    }

    [Theory]
    [InlineData("/ADMIN/x")]
    [InlineData("/Admin/x")]
    [InlineData("/aDmIn/x")]
    public async Task RATE03_case_variants_match_the_admin_route_and_its_policy(string rawPath)
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var before = fixture.Upstream.Requests;

        using var asUser = await RawGetAsync(rawPath, tokens.AccessToken);
        using var asAdmin = await RawGetAsync(rawPath, await fixture.AdminTokenAsync());

        Assert.Equal(HttpStatusCode.Forbidden, asUser.StatusCode);
        Assert.Equal(before + 1, fixture.Upstream.Requests);
        Assert.Equal(HttpStatusCode.OK, asAdmin.StatusCode);
        // What the upstream sees is the path that was matched (and authorized), as sent.
        var echo = await asAdmin.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(rawPath, echo.GetProperty("path").GetString());
    }

    [Fact]
    public async Task An_invalid_path_answer_is_problem_json_and_audited()
    {
        var audits = await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002);

        using var response = await RawGetAsync("/public/a%2Fb", null);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "/invalid-path");
        Assert.Equal(audits + 1, await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002));
    }

    [Fact]
    public async Task The_upstream_sees_exactly_the_path_and_query_that_was_matched()
    {
        using var response = await RawGetAsync("/public/a/b%20c?q=1&q=2", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("/public/a/b%20c?q=1&q=2", echo.GetProperty("rawTarget").GetString());
    }
}
