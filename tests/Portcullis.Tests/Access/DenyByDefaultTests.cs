using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.RateLimits;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Access;

/// <summary>Z01 / AZ-01: every endpoint states who may call it and which rate-limit policy applies.</summary>
public sealed class DenyByDefaultTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    // The documented anonymous allowlist. Adding an endpoint here is a security decision: say why in review.
    private static readonly HashSet<string> Anonymous = new(StringComparer.Ordinal)
    {
        "POST /connect/token",
        "POST /api/accounts",
        "POST /api/accounts/password",
        // Password reset by e-mailed link (issue 19): the address or the link's token is the credential.
        "POST /api/accounts/password-reset",
        "POST /api/accounts/password-reset/confirm",
        "POST /api/accounts/verify-email",
        "GET /health/live",
        "GET /health/ready",
        "GET /test/fault", // added by the test server (Infrastructure/TestEndpoints.cs), not by the product
        // Browser sign-in (issue 18). OpenIddict authenticates the access token at userinfo itself; the pages decide from
        // the browser session (and send an anonymous visitor to /signin); the stylesheet is public.
        "GET /connect/userinfo",
        "POST /connect/userinfo",
        // Each page answers only GET/HEAD and the methods it has handlers for (HDR-07).
        "GET /connect/authorize", "HEAD /connect/authorize", "POST /connect/authorize",
        "GET /connect/endsession", "HEAD /connect/endsession", "POST /connect/endsession",
        "GET /signin", "HEAD /signin", "POST /signin",
        "GET /signup", "HEAD /signup", "POST /signup",
        "GET /account", "HEAD /account", "POST /account",
        // Second factor (issue 19): enrolment from the account page, the code step of a sign-in.
        "GET /account/authenticator", "HEAD /account/authenticator", "POST /account/authenticator",
        "GET /signin/code", "HEAD /signin/code", "POST /signin/code",
        "GET /forgot-password", "HEAD /forgot-password", "POST /forgot-password",
        "GET /reset-password", "HEAD /reset-password", "POST /reset-password",
        "GET /verify-email", "HEAD /verify-email", "POST /verify-email",
        "GET /assets/portcullis.css",
        "GET /assets/portcullis.svg",
    };

    /// <summary>
    /// Only with <c>Api:PublicDocs=true</c> (an operator's decision, HDR-13): the OpenAPI document and Scalar's page and
    /// scripts (<see cref="PublicDocsDenyByDefaultTests"/>).
    /// </summary>
    internal static readonly HashSet<string> PublicDocs = new(StringComparer.Ordinal)
    {
        "GET /openapi/{documentName}.json",
        "GET /openapi/{documentName?}",
        "GET /openapi/scalar.js",
        "GET /openapi/scalar.aspnetcore.js",
        "GET /openapi/favicon.svg",
    };

    private IReadOnlyList<RouteEndpoint> Endpoints() => EndpointsOf(fixture.Server);

    internal static IReadOnlyList<RouteEndpoint> EndpointsOf(PortcullisServer server) =>
        [.. server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()];

    internal static HashSet<string> AnonymousWith(IEnumerable<string> more) => new(Anonymous.Concat(more), StringComparer.Ordinal);

    internal static IEnumerable<string> Keys(RouteEndpoint endpoint)
    {
        var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"];
        return methods.Select(m => $"{m} /{endpoint.RoutePattern.RawText!.TrimStart('/')}".TrimEnd('/'));
    }

    [Fact]
    public void Z01_every_endpoint_has_an_explicit_authorization_decision_and_rate_limit_policy() =>
        AssertExplicitDecisions(Endpoints(), Anonymous);

    internal static void AssertExplicitDecisions(IReadOnlyList<RouteEndpoint> endpoints, IReadOnlySet<string> anonymous)
    {
        Assert.NotEmpty(endpoints);
        var missing = new List<string>();
        foreach (var endpoint in endpoints)
        {
            var name = string.Join(",", Keys(endpoint));
            var allowsAnonymous = endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null;
            var requiresAuthorization = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Any();
            if (!allowsAnonymous && !requiresAuthorization)
            {
                missing.Add($"{name}: no authorization decision");
            }

            if (allowsAnonymous && !Keys(endpoint).All(anonymous.Contains))
            {
                missing.Add($"{name}: anonymous but not in the documented allowlist");
            }

            var limit = endpoint.Metadata.GetMetadata<EnableRateLimitingAttribute>();
            if (limit?.PolicyName is not { } policy || !RateLimitPolicies.All.Contains(policy))
            {
                missing.Add($"{name}: no known rate-limit policy");
            }
        }

        Assert.Empty(missing);
    }

    [Fact]
    public async Task Z01_every_non_anonymous_endpoint_answers_401_without_a_token()
    {
        using var http = fixture.Server.CreateClient();
        var checkedCount = 0;
        foreach (var endpoint in Endpoints())
        {
            foreach (var key in Keys(endpoint))
            {
                if (Anonymous.Contains(key))
                {
                    continue;
                }

                var method = key[..key.IndexOf(' ', StringComparison.Ordinal)];
                var path = key[(key.IndexOf(' ', StringComparison.Ordinal) + 2)..];
                path = System.Text.RegularExpressions.Regex.Replace(path, @"\{[^}]+\}", Guid.NewGuid().ToString());
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method is "POST" or "PUT" or "PATCH")
                {
                    request.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
                }

                using var response = await http.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{key} answered {(int)response.StatusCode} without a token");
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
                checkedCount++;
            }
        }

        Assert.True(checkedCount >= 4, "expected the /api/me endpoints to be checked");
    }
}

/// <summary>Z01 with <c>Api:PublicDocs=true</c>: the API reference joins the anonymous allowlist, and nothing else does.</summary>
public sealed class PublicDocsDenyByDefaultTests(Portcullis.Tests.Hosting.PublicDocsFixture fixture) : IClassFixture<Portcullis.Tests.Hosting.PublicDocsFixture>
{
    [Fact]
    public void Z01_with_public_docs_only_the_api_reference_is_added_to_the_anonymous_allowlist()
    {
        var endpoints = DenyByDefaultTests.EndpointsOf(fixture.Server);

        DenyByDefaultTests.AssertExplicitDecisions(endpoints, DenyByDefaultTests.AnonymousWith(DenyByDefaultTests.PublicDocs));
        // Each added entry is there (the list is exactly the reference's endpoints) and anonymous.
        var anonymous = endpoints.Where(e => e.Metadata.GetMetadata<IAllowAnonymous>() is not null).SelectMany(DenyByDefaultTests.Keys).ToHashSet();
        Assert.Empty(DenyByDefaultTests.PublicDocs.Except(anonymous));
    }
}
