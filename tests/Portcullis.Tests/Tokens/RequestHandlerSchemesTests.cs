using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// OpenIddict's request handler is asked only about paths under its roots. That is safe only while every endpoint
/// OpenIddict serves is under them: this checks the live configuration, so enabling an endpoint elsewhere fails here.
/// </summary>
public sealed class RequestHandlerSchemesTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public void Every_configured_openiddict_endpoint_is_under_the_roots_the_handler_is_asked_about()
    {
        var server = fixture.Server.Services.GetRequiredService<IOptionsMonitor<OpenIddictServerOptions>>().CurrentValue;
        var endpoints = typeof(OpenIddictServerOptions).GetProperties()
            .Where(p => p.Name.EndsWith("EndpointUris", StringComparison.Ordinal) && p.PropertyType == typeof(List<Uri>))
            .SelectMany(p => ((List<Uri>)p.GetValue(server)!).Select(uri => (p.Name, Uri: uri)))
            .ToList();

        Assert.True(endpoints.Count >= 5, string.Join(", ", endpoints)); // control: token, revoke, introspect, jwks, configuration
        foreach (var (name, uri) in endpoints)
        {
            var path = new PathString("/" + (uri.IsAbsoluteUri ? uri.AbsolutePath : uri.OriginalString).TrimStart('/'));
            Assert.True(RequestHandlerSchemes.IsOpenIddictPath(path), $"{name}: {uri} is outside {string.Join(", ", RequestHandlerSchemes.OpenIddictRoots)}");
        }
    }

    [Theory]
    [InlineData("/connect/token", true)]
    [InlineData("/CONNECT/TOKEN", true)]
    [InlineData("/.well-known/openid-configuration", true)]
    [InlineData("/.well-known/jwks", true)]
    [InlineData("/api/me", false)]
    [InlineData("/connection/token", false)]
    [InlineData("/", false)]
    public async Task The_openiddict_handler_is_offered_only_under_its_roots(string path, bool offered)
    {
        var services = fixture.Server.Services;
        var accessor = services.GetRequiredService<IHttpContextAccessor>();
        var provider = services.GetRequiredService<IAuthenticationSchemeProvider>();
        Assert.IsType<RequestHandlerSchemes>(provider);

        var previous = accessor.HttpContext;
        accessor.HttpContext = new DefaultHttpContext { Request = { Path = path } };
        try
        {
            var schemes = await provider.GetRequestHandlerSchemesAsync();
            Assert.Equal(offered, schemes.Any(s => s.HandlerType == typeof(OpenIddictServerAspNetCoreHandler)));
        }
        finally
        {
            accessor.HttpContext = previous;
        }
    }
}
