using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Gateway;

/// <summary>Bodies on gateway routes: JSON Schema field by field (never echoing values), media type, size limits.</summary>
public sealed class GatewayBodyTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private static StringContent Json(string text, string mediaType = "application/json") => new(text, Encoding.UTF8, mediaType);

    private Task<HttpResponseMessage> RegisterAsync(HttpContent content, string route = "register") =>
        _http.SendAsync(HttpMethod.Post, route, null, content);

    [Fact]
    public async Task A_valid_body_reaches_the_upstream_byte_for_byte()
    {
        const string body = """{"username":"carol","age":30,"email":"c@example.com"}""";

        using var response = await RegisterAsync(Json(body));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(body, echo.GetProperty("body").GetString());
        Assert.Equal(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), echo.GetProperty("headers").GetProperty("content-length").GetString());
    }

    [Fact]
    public async Task V01_schema_errors_are_listed_by_json_pointer_and_never_echo_the_values()
    {
        var before = fixture.Upstream.Requests;
        var audits = await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002);

        using var response = await RegisterAsync(Json("""{"username":"secret-value-xyzzy-too-long-for-it","age":7,"role":"admin"}"""));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "/validation");
        var errors = problem.GetProperty("errors");
        Assert.True(errors.TryGetProperty("/username", out _), errors.GetRawText());
        Assert.True(errors.TryGetProperty("/age", out _), errors.GetRawText());
        Assert.Equal("Is not an allowed member.", errors.GetProperty("/role")[0].GetString());
        var text = problem.GetRawText();
        Assert.DoesNotContain("xyzzy", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"7", text, StringComparison.Ordinal);
        Assert.DoesNotContain("7 ", text, StringComparison.Ordinal);
        Assert.Equal(before, fixture.Upstream.Requests);
        Assert.Equal(audits + 1, await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002));
    }

    [Fact]
    public async Task A_missing_required_member_is_named()
    {
        using var response = await RegisterAsync(Json("""{"username":"carol"}"""));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "/validation");
        Assert.Contains("age", problem.GetProperty("errors").GetProperty("").GetRawText(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"username":"carol","age":30""")]
    [InlineData("""{"username":'carol',"age":30}""")]
    [InlineData("""{"username":"carol","age":30}}""")]
    [InlineData("""{"username":"carol","username":"admin","age":30}""")]
    [InlineData("")]
    public async Task V07_malformed_or_ambiguous_json_is_400_without_parser_internals(string body)
    {
        var before = fixture.Upstream.Requests;

        using var response = await RegisterAsync(Json(body));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.DoesNotContain("BytePosition", problem.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", problem.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(before, fixture.Upstream.Requests);
    }

    [Fact]
    public async Task V02_deep_nesting_is_refused_quickly_and_the_server_lives()
    {
        // 500 levels fit the route's 1 KiB limit; the parser stops at 32.
        var deep = new string('[', 500) + new string(']', 500);

        using var response = await RegisterAsync(Json(deep));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "/malformed-json");
        using var after = await RegisterAsync(Json("""{"username":"carol","age":30}"""));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    /// <summary><paramref name="depth"/> objects, each inside the one before: <c>{"a":{"a":…{}…}}</c>.</summary>
    private static string Nested(int depth) =>
        string.Concat(Enumerable.Repeat("""{"a":""", depth - 1)) + "{}" + new string('}', depth - 1);

    [Theory]
    [InlineData("nested")]
    [InlineData("register")]
    public async Task V02_NET15_a_body_nested_33_deep_is_the_documented_400_and_never_forwarded(string route)
    {
        var before = fixture.Upstream.Requests;
        var audits = await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002);

        using var response = await RegisterAsync(Json(Nested(33)), route);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "/malformed-json");
        Assert.Equal("The request body is not valid JSON.", problem.GetProperty("title").GetString());
        Assert.Equal(before, fixture.Upstream.Requests);
        Assert.Equal(audits + 1, await GatewayProxyTests.CountAuditAsync(fixture.Server, 6002));
    }

    [Fact]
    public async Task V02_NET15_a_body_nested_32_deep_is_parsed_the_API_limit_is_the_gateway_limit()
    {
        Assert.Equal(32, Portcullis.Hosting.JsonBody.MaxDepth); // NET-15: at most 32, for the API and the gateway alike
        var body = Nested(32);
        var before = fixture.Upstream.Requests;

        using var accepted = await RegisterAsync(Json(body), "nested");
        using var checkedBySchema = await RegisterAsync(Json(body), "register");

        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(body, (await accepted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("body").GetString());
        Assert.Equal(before + 1, fixture.Upstream.Requests);
        // Parsed, so the schema speaks (not the parser): the limit, not the schema, refuses 33.
        await ProblemAssert.IsProblemAsync(checkedBySchema, HttpStatusCode.BadRequest, "/validation");
    }

    [Fact]
    public async Task V02_a_body_over_the_route_limit_is_413_and_never_forwarded()
    {
        var before = fixture.Upstream.Requests;
        var big = $$"""{"username":"carol","age":30,"email":"{{new string('a', 2000)}}"}""";

        using var declared = await RegisterAsync(Json(big));
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "register") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var streamed = await _http.SendAsync(request);

        await ProblemAssert.IsProblemAsync(declared, HttpStatusCode.RequestEntityTooLarge, "/payload-too-large");
        await ProblemAssert.IsProblemAsync(streamed, HttpStatusCode.RequestEntityTooLarge, "/payload-too-large");
        Assert.Equal(before, fixture.Upstream.Requests);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/json; charset=utf-16")]
    public async Task V04_a_wrong_media_type_is_415(string contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"username":"carol","age":30}"""));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);

        using var response = await RegisterAsync(content);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "/unsupported-media-type");
    }

    [Fact]
    public async Task A_streamed_route_forwards_bodies_within_its_limit_and_refuses_larger_ones()
    {
        var (_, _, tokens) = await _http.NewUserAsyncCompat();
        var small = new StringContent(new string('x', 2000), Encoding.UTF8, "text/plain");
        var large = new StringContent(new string('x', 5000), Encoding.UTF8, "text/plain");
        var chunkedLarge = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(new string('y', 50_000))));
        chunkedLarge.Headers.ContentType = new("text/plain");

        using var ok = await _http.SendAsync(HttpMethod.Post, "upload/x", tokens.AccessToken, small);
        using var tooLarge = await _http.SendAsync(HttpMethod.Post, "upload/x", tokens.AccessToken, large);
        using var request = new HttpRequestMessage(HttpMethod.Post, "upload/x") { Content = chunkedLarge };
        request.Headers.TransferEncodingChunked = true;
        using var chunked = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(2000, (await ok.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("body").GetString()!.Length);
        await ProblemAssert.IsProblemAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge);
        Assert.True(chunked.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{chunked.StatusCode}: {await chunked.Content.ReadAsStringAsync()}");
    }
}

internal static class GatewayClientFlows
{
    public static Task<(Guid Id, string Username, Infrastructure.ClientFlows.Tokens Tokens)> NewUserAsyncCompat(this HttpClient http) =>
        Infrastructure.ClientFlows.NewUserAsync(http);
}
