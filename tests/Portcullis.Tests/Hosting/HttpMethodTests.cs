using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Only the methods each route declares are served; diagnostic methods and method overrides are not.</summary>
public sealed class HttpMethodTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Marker = "x-echo-probe-5f1c";
    private readonly HttpClient _http = fixture.Client;

    [Theory]
    [InlineData("TRACE")]
    [InlineData("TRACK")]
    public async Task H04_trace_and_track_are_405_with_allow_and_echo_nothing(string method)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "");
        request.Headers.Add("X-Echo-Probe", Marker);
        request.Headers.Add("Cookie", "session=" + Marker);

        using var response = await _http.SendAsync(request);

        var body = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.NotEmpty(response.Content.Headers.Allow);
        Assert.DoesNotContain(method, response.Content.Headers.Allow, StringComparer.OrdinalIgnoreCase);
        var text = body.GetRawText();
        Assert.DoesNotContain(Marker, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("X-Echo-Probe", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(response.Headers, h => h.Value.Any(v => v.Contains(Marker, StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public async Task H04_trace_on_an_api_route_with_a_token_is_405_too()
    {
        var (_, _, tokens) = await _http.NewUserAsync("trace");
        using var request = new HttpRequestMessage(HttpMethod.Trace, "api/me");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        var body = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed);
        Assert.DoesNotContain(tokens.AccessToken, body.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task H04_propfind_on_me_is_never_served()
    {
        var (_, _, tokens) = await _http.NewUserAsync("propfind");
        using var request = new HttpRequestMessage(new HttpMethod("PROPFIND"), "api/me");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.True(response.StatusCode is HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotFound, $"got {(int)response.StatusCode}");
        await ProblemAssert.IsProblemAsync(response, response.StatusCode);
    }

    [Fact]
    public async Task H04_delete_on_me_is_405_and_the_account_still_works()
    {
        var (id, _, tokens) = await _http.NewUserAsync("delete");
        using var request = new HttpRequestMessage(HttpMethod.Delete, "api/me");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.Contains("GET", response.Content.Headers.Allow);
        await AssertMeStillWorksAsync(tokens.AccessToken, id);
    }

    [Theory]
    [InlineData("OPTIONS", "signin")]
    [InlineData("PUT", "signin")]
    [InlineData("DELETE", "signup")]
    [InlineData("PATCH", "account")]
    [InlineData("OPTIONS", "connect/endsession")]
    public async Task H04_HDR07_a_page_answers_only_its_own_methods(string method, string page)
    {
        // Razor Pages would otherwise render the page for any method without a handler (OPTIONS → 200 with the form).
        // Anonymously, an undeclared method meets deny-by-default first (401, as on every API route); with a token it
        // is routing's 405 with Allow.
        using (var anonymous = await _http.SendAsync(new HttpRequestMessage(new HttpMethod(method), page)))
        {
            await ProblemAssert.IsProblemAsync(anonymous, HttpStatusCode.Unauthorized);
            Assert.DoesNotContain("<form", await anonymous.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        }

        using (var api = await _http.SendAsync(new HttpRequestMessage(new HttpMethod(method), "api/accounts")))
        {
            await ProblemAssert.IsProblemAsync(api, HttpStatusCode.Unauthorized); // the same answer an API route gives
        }

        var (_, _, tokens) = await _http.NewUserAsync("pagemethod");
        using var response = await _http.SendWithTokenAsync(new HttpRequestMessage(new HttpMethod(method), page), tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.Contains("GET", response.Content.Headers.Allow);
        Assert.DoesNotContain(method, response.Content.Headers.Allow, StringComparer.OrdinalIgnoreCase);
        Assert.DoesNotContain("<form", await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task H04_content_length_with_chunked_transfer_encoding_is_400_and_the_connection_closes()
    {
        const string body = "grant_type=password&username=a&password=b&client_id=portcullis";
        var request =
            "POST /connect/token HTTP/1.1\r\n" +
            $"Host: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\n" +
            "Content-Type: application/x-www-form-urlencoded\r\n" +
            "Content-Length: 4\r\n" +
            "Transfer-Encoding: chunked\r\n" +
            "\r\n" +
            $"{body.Length:x}\r\n{body}\r\n0\r\n\r\n";

        var exchange = await RawHttps.SendAsync(fixture.Server, request, TimeSpan.FromSeconds(15));

        Assert.Equal(400, RawHttps.StatusCode(exchange.Response));
        Assert.Contains("\r\nConnection: close\r\n", exchange.Response, StringComparison.OrdinalIgnoreCase);
        Assert.True(exchange.ClosedByServer, "The server kept the connection open after an ambiguous request: " + exchange.Response);
        Assert.DoesNotContain("access_token", exchange.Response, StringComparison.Ordinal);
        // invalid_grant would mean the token endpoint read the body: the framing must be refused before that.
        Assert.DoesNotContain("invalid_grant", exchange.Response, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("X-HTTP-Method-Override")]
    [InlineData("X-Method-Override")]
    [InlineData("X-HTTP-Method")]
    public async Task H05_a_post_with_a_method_override_header_is_not_treated_as_get(string header)
    {
        var (id, _, tokens) = await _http.NewUserAsync("override");
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/me");
        request.Headers.Add(header, "GET");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.DoesNotContain(id.ToString(), await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task H05_a_post_with_a_method_query_parameter_is_not_treated_as_get()
    {
        var (id, _, tokens) = await _http.NewUserAsync("override");

        using var response = await _http.PostWithTokenAsync("api/me?_method=GET", tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.DoesNotContain(id.ToString(), await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("X-HTTP-Method-Override")]
    [InlineData("X-Method-Override")]
    public async Task H05_a_get_with_a_delete_override_does_only_a_get(string header)
    {
        var (id, _, tokens) = await _http.NewUserAsync("override");
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/me?_method=DELETE");
        request.Headers.Add(header, "DELETE");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await AssertMeStillWorksAsync(tokens.AccessToken, id);
    }

    private async Task AssertMeStillWorksAsync(string accessToken, Guid id)
    {
        using var me = await _http.GetWithTokenAsync("api/me", accessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var body = await me.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(id, body.GetProperty("id").GetGuid());
    }
}
