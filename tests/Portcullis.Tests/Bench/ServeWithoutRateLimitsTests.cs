using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Bench;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Bench;

/// <summary>
/// <c>Portcullis.Bench serve-without-rate-limits</c> (bench/run.sh's limiter-off run): the product's app with every
/// endpoint's rate limits taken away by the bench host, while the product itself, with the same settings, still
/// limits. The product has no setting that turns its limiter off.
/// </summary>
public sealed class ServeWithoutRateLimitsTests
{
    // One registration attempt per minute per client IP: the second is refused by the product.
    private static readonly Dictionary<string, string?> OnePerMinute = new()
    {
        ["RateLimits:Policies:credentials:Algorithm"] = "FixedWindow",
        ["RateLimits:Policies:credentials:PermitLimit"] = "1",
        ["RateLimits:Policies:credentials:Window"] = "00:01:00",
    };

    private static async Task<HttpResponseMessage> RegisterEmptyAsync(HttpClient http) =>
        await http.PostAsJsonAsync("api/accounts", new { });

    [Fact]
    public async Task The_product_limits_and_the_bench_host_with_the_same_settings_does_not()
    {
        await using (var product = await PortcullisServer.StartAsync(OnePerMinute))
        {
            using var http = product.CreateClient();
            using var first = await RegisterEmptyAsync(http);
            Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
            Assert.True(first.Headers.Contains("RateLimit-Policy"));
            using var second = await RegisterEmptyAsync(http);
            Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        }

        await using var bench = await PortcullisServer.StartAsync(OnePerMinute, configureApp: ServeWithoutRateLimits.RemoveRateLimits);
        using var client = bench.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            using var response = await RegisterEmptyAsync(client);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode); // validated, never refused
            Assert.False(response.Headers.Contains("RateLimit-Policy"));
            Assert.False(response.Headers.Contains("RateLimit"));
        }

        var endpoints = bench.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        Assert.NotEmpty(endpoints);
        Assert.All(endpoints, e => Assert.NotNull(e.Metadata.GetMetadata<DisableRateLimitingAttribute>()));
    }
}
