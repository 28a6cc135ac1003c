using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>HDR-10 (H04): ambiguous HTTP/1.1 framing, the raw material of request smuggling, is refused and the connection closed.</summary>
public sealed class RequestFramingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Form = "grant_type=password&username=a&password=b&client_id=portcullis";

    [Fact]
    public async Task H04_two_different_content_lengths_are_400_and_the_connection_closes()
    {
        var exchange = await SendAsync(
            "Content-Type: application/x-www-form-urlencoded\r\n" +
            $"Content-Length: {Form.Length}\r\n" +
            "Content-Length: 4\r\n",
            Form);

        AssertRefused(exchange);
    }

    [Fact]
    public async Task H04_an_obsolete_folded_header_is_400_and_the_connection_closes()
    {
        var exchange = await SendAsync(
            "Content-Type: application/x-www-form-urlencoded\r\n" +
            "X-Folded: first\r\n" +
            " Transfer-Encoding: chunked\r\n" +
            $"Content-Length: {Form.Length}\r\n",
            Form);

        AssertRefused(exchange);
    }

    [Fact]
    public async Task H04_a_transfer_encoding_that_does_not_end_in_chunked_is_400_and_the_connection_closes()
    {
        var exchange = await SendAsync(
            "Content-Type: application/x-www-form-urlencoded\r\n" +
            "Transfer-Encoding: chunked, identity\r\n",
            $"{Form.Length:x}\r\n{Form}\r\n0\r\n\r\n");

        AssertRefused(exchange);
    }

    [Fact]
    public async Task H04_a_well_framed_raw_request_is_answered_normally()
    {
        // The control: the raw client itself frames requests correctly, so the refusals above are the server's.
        var exchange = await RawHttps.SendAsync(fixture.Server,
            $"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\nConnection: close\r\n\r\n",
            TimeSpan.FromSeconds(15));

        Assert.Equal(200, RawHttps.StatusCode(exchange.Response));
        Assert.Contains("{\"status\":\"ok\"}", exchange.Response, StringComparison.Ordinal);
        Assert.True(exchange.ClosedByServer, "Connection: close was not honoured.");
    }

    private Task<RawHttps.Exchange> SendAsync(string headers, string body) =>
        RawHttps.SendAsync(fixture.Server,
            "POST /connect/token HTTP/1.1\r\n" +
            $"Host: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\n" +
            headers +
            "\r\n" +
            body,
            TimeSpan.FromSeconds(15));

    private static void AssertRefused(RawHttps.Exchange exchange)
    {
        Assert.Equal(400, RawHttps.StatusCode(exchange.Response));
        Assert.Contains("\r\nConnection: close\r\n", exchange.Response, StringComparison.OrdinalIgnoreCase);
        Assert.True(exchange.ClosedByServer, "The connection stayed open after an ambiguous request: " + exchange.Response);
        Assert.DoesNotContain("access_token", exchange.Response, StringComparison.Ordinal);
        Assert.DoesNotContain("invalid_grant", exchange.Response, StringComparison.Ordinal); // the body was never processed
    }
}
