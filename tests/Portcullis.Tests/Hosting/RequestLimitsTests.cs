using System.Net;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Kestrel's limits hold for a JSON API: small bodies, small headers.</summary>
public sealed class RequestLimitsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task A_100_KiB_json_body_is_413_problem_json_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("big");
        var json = Oversized(username);
        using var body = new StringContent(json, Encoding.UTF8, "application/json");

        using var response = await _http.PostAsync("api/accounts", body);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
        Assert.DoesNotContain(ClientFlows.Password, problem.GetRawText(), StringComparison.Ordinal);
        SecurityHeadersTests.AssertSecurityHeaders(response);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        Assert.False(await db.Users.AnyAsync(u => u.UserName == username));
    }

    [Fact]
    public async Task A_100_KiB_chunked_json_body_is_413_too()
    {
        var username = ClientFlows.UniqueName("bigc");
        var json = Oversized(username);
        using var body = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        body.Headers.ContentType = new("application/json") { CharSet = "utf-8" };
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/accounts") { Content = body };
        request.Headers.TransferEncodingChunked = true;

        using var response = await _http.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
    }

    // The padding is inside a known member, first, so the reader must take in the whole body before it can refuse it.
    private static string Oversized(string username) =>
        $"{{\"password\":\"{ClientFlows.Password}{new string('a', 100 * 1024)}\",\"username\":\"{username}\",\"email\":\"{username}@example.com\"}}";

    [Fact]
    public async Task A_40_KiB_header_is_431()
    {
        var request =
            "GET /health/live HTTP/1.1\r\n" +
            $"Host: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\n" +
            $"X-Padding: {new string('a', 40 * 1024)}\r\n" +
            "\r\n";

        var exchange = await RawHttps.SendAsync(fixture.Server, request, TimeSpan.FromSeconds(15));

        Assert.Equal(431, RawHttps.StatusCode(exchange.Response));
        Assert.DoesNotContain("\"status\":\"ok\"", exchange.Response, StringComparison.Ordinal);
    }
}
