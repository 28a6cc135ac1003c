using System.Net;

namespace Portcullis.Tests.Gateway;

/// <summary>
/// What the client gets back from an upstream: the headers naming the upstream's software are removed by default
/// (whatever the status), a route may keep some, and every other upstream header passes unchanged.
/// </summary>
public sealed class GatewayResponseHeadersTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly string[] Software = ["Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version"];

    /// <summary>The raw value as sent (the validated view would re-parse Server into product tokens).</summary>
    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.NonValidated.TryGetValues(name, out var values) ? values.ToString() : null;

    [Theory]
    [InlineData(200)]
    [InlineData(404)]
    [InlineData(500)]
    public async Task Upstream_software_headers_are_removed_and_its_other_headers_pass(int status)
    {
        using var response = await fixture.Client.GetAsync($"leaky/x?status={status}", TestContext.Current.CancellationToken);

        Assert.Equal((HttpStatusCode)status, response.StatusCode); // the upstream's answer, not one of Portcullis's
        Assert.Equal("leaky", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        foreach (var name in Software)
        {
            Assert.True(Header(response, name) is null, $"{name}: {Header(response, name)} reached the client");
        }

        Assert.Equal("upstream-request-42", Header(response, "X-Request-Id"));
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(Header(response, "Strict-Transport-Security")); // Portcullis's own headers are still added
    }

    [Fact]
    public async Task A_route_lets_through_only_the_headers_it_keeps()
    {
        using var response = await fixture.Client.GetAsync("leaky-kept/x", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(TestUpstream.LeakyServer, Header(response, "Server")); // kept as "server": names are case-insensitive
        Assert.Equal("4.0.30319", Header(response, "X-AspNet-Version"));
        Assert.Null(Header(response, "X-AspNetMvc-Version")); // not kept
        Assert.Null(Header(response, "X-Powered-By"));
        Assert.Equal("upstream-request-42", Header(response, "X-Request-Id"));
    }
}
