using System.Globalization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Access;
using Portcullis.Tokens;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace Portcullis.Gateway;

/// <summary>
/// The gateway's table of contents: YARP with routes from configuration, a named authorization policy and
/// rate-limit metadata per route, the checks step in the proxy pipeline, and the identity headers transform.
/// <para>
/// Owns the proxied routes: their options and reload (<see cref="GatewayConfigProvider"/>), the role and scope
/// checks, the request checks (<see cref="GatewayRequestChecks"/>: paths, bodies, schemas, upstream faults), the
/// identity headers and the signed assertion sent upstream.
/// </para>
/// <para>
/// Uses Tokens (the key ring that signs the assertion, the issuer), Access (<c>RevocationState</c> for current roles),
/// Access (policies, the 401/403 answers it wraps), RateLimits (policy names and limits per route), Audit
/// (denials and faults) and Hosting (problem types, security headers, metrics, log event ids).
/// </para>
/// </summary>
public static class GatewayEndpoints
{
    /// <summary>Every incoming header with this prefix is removed before Portcullis adds its own.</summary>
    public const string HeaderPrefix = "X-Portcullis-";
    public const string UserIdHeader = "X-Portcullis-User-Id";
    public const string RolesHeader = "X-Portcullis-Roles";
    public const string ScopesHeader = "X-Portcullis-Scopes";
    public const string ClientIdHeader = "X-Portcullis-Client-Id";
    public const string AssertionHeader = "X-Portcullis-Assertion";

    public static IServiceCollection AddPortcullisGateway(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<GatewayOptions>().BindConfiguration(GatewayOptions.Section);
        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        services.AddSingleton<GatewayConfigProvider>();
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<GatewayConfigProvider>());
        // After AddPortcullisAuthorization: these replace the default policy provider and Portcullis's result
        // handler (which the gateway's wraps).
        services.AddSingleton<IAuthorizationPolicyProvider, GatewayPolicyProvider>();
        services.AddSingleton<IAuthorizationHandler, GatewayAccessHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, GatewayAuthorizationResultHandler>();
        services.AddSingleton<GatewayAssertions>();
        services.Configure<LoggerFilterOptions>(logging => logging.AddFilter("Yarp", LogLevel.Warning)); // no line per proxied request
        services.AddReverseProxy().AddTransforms(transforms => transforms.AddRequestTransform(ApplyIdentityAsync));
        return services;
    }

    public static void MapPortcullisGateway(this WebApplication app)
    {
        var routes = app.Services.GetRequiredService<GatewayConfigProvider>();
        app.MapReverseProxy(pipeline => pipeline.UseMiddleware<GatewayRequestChecks>())
            .ConfigureEndpoints((endpoint, route) =>
            {
                // Runs when YARP builds a route's endpoint, right after the snapshot holding it became current.
                if (!routes.Current.ByRouteId.TryGetValue(route.RouteId, out var compiled))
                {
                    return;
                }

                endpoint.WithMetadata(compiled);
                foreach (var limit in compiled.RateLimits.Skip(1))
                {
                    endpoint.WithMetadata(new EnableRateLimitingAttribute(limit)); // every named policy must admit
                }
            });
    }

    /// <summary>
    /// Strips every identity header a client sent (and the Authorization header unless the route forwards the token),
    /// then adds the verified caller. Runs after YARP copied the incoming headers.
    /// </summary>
    private static async ValueTask ApplyIdentityAsync(RequestTransformContext transform)
    {
        var http = transform.HttpContext;
        var headers = transform.ProxyRequest.Headers;
        RemoveIdentityHeaders(headers);
        if (transform.ProxyRequest.Content?.Headers is { } contentHeaders)
        {
            RemoveIdentityHeaders(contentHeaders);
        }

        var route = http.GetEndpoint()?.Metadata.GetMetadata<GatewayRoute>();
        if (route?.Forward != ForwardMode.Token)
        {
            headers.Authorization = null;
        }

        if (route is null || await GatewayCaller.ResolveAsync(http, http.User) is not { } caller)
        {
            return;
        }

        if (caller.UserId is { } userId)
        {
            headers.TryAddWithoutValidation(UserIdHeader, userId);
        }

        if (caller.ClientId is { } clientId)
        {
            headers.TryAddWithoutValidation(ClientIdHeader, clientId);
        }

        headers.TryAddWithoutValidation(RolesHeader, string.Join(',', caller.Roles));
        headers.TryAddWithoutValidation(ScopesHeader, string.Join(' ', caller.Scopes));
        if (route.Forward == ForwardMode.Assertion)
        {
            headers.TryAddWithoutValidation(AssertionHeader, http.RequestServices.GetRequiredService<GatewayAssertions>().Create(route, caller));
        }
    }

    /// <summary>
    /// Looks at the names through <c>NonValidated</c> (no header value is parsed or allocated on the way) and builds a
    /// list only when there is something to remove, which for an honest client is never.
    /// </summary>
    private static void RemoveIdentityHeaders(System.Net.Http.Headers.HttpHeaders headers)
    {
        List<string>? found = null;
        foreach (var header in headers.NonValidated)
        {
            if (IsIdentityHeader(header.Key))
            {
                (found ??= []).Add(header.Key);
            }
        }

        if (found is not null)
        {
            foreach (var name in found)
            {
                headers.Remove(name);
            }
        }
    }

    private static bool IsIdentityHeader(string name) => name.StartsWith(HeaderPrefix, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// A short-lived JWT stating the verified caller to one upstream: signed with Portcullis's current signing key (the
/// upstream checks it against the published JWKS), audience the route, <c>typ</c> distinct from access tokens so
/// it can never be replayed to Portcullis or another route as one.
/// </summary>
public sealed class GatewayAssertions(KeyRing keys, IssuerResolver issuer, IOptions<GatewayOptions> options, TimeProvider time)
{
    public const string TokenType = "portcullis-assertion+jwt";

    private readonly JsonWebTokenHandler _handler = new();

    public string Create(GatewayRoute route, GatewayCaller caller)
    {
        var key = keys.Current.SigningKeys[0];
        var now = time.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            [JwtRegisteredClaimNames.Sub] = caller.UserId ?? caller.ClientId ?? "",
            [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture),
            ["roles"] = caller.Roles.ToArray(),
            ["scope"] = string.Join(' ', caller.Scopes),
        };
        if (caller.ClientId is { } client)
        {
            claims["client_id"] = client;
        }

        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer.Issuer.AbsoluteUri,
            Audience = route.Name,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + options.Value.AssertionLifetime,
            TokenType = TokenType,
            Claims = claims,
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256),
        });
    }
}
