using System.Diagnostics;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// <c>POST /connect/token</c> after OpenIddict has parsed the request and authenticated the client (pass-through
/// mode): one handler per grant, chosen by <c>grant_type</c>.
/// </summary>
public static class TokenEndpoint
{
    // The CancellationToken is also what keeps MapPost from taking this for a RequestDelegate (HttpContext → Task),
    // which would discard the result instead of executing it.
    public static async Task<Results<SignInHttpResult, ForbidHttpResult, ProblemHttpResult>> HandleAsync(HttpContext http, CancellationToken ct)
    {
        var request = http.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenIddict request is missing.");

        // Only the asked grant's handler is resolved, and with it only what that grant uses: a client-credentials
        // request builds no UserManager and takes no throttle or password-hashing service.
        var services = http.RequestServices;
        if (request.IsPasswordGrantType())
        {
            return await services.GetRequiredService<PasswordGrant>().HandleAsync(http, request, ct);
        }

        if (request.IsAuthorizationCodeGrantType())
        {
            return await services.GetRequiredService<AuthorizationCodeGrant>().HandleAsync(http, request, ct);
        }

        if (request.IsRefreshTokenGrantType())
        {
            return (await services.GetRequiredService<RefreshGrant>().HandleAsync(http, request)).Result switch
            {
                SignInHttpResult signIn => signIn,
                ForbidHttpResult refused => refused,
                var other => throw new UnreachableException($"RefreshGrant returned {other?.GetType().Name}."),
            };
        }

        if (request.IsClientCredentialsGrantType())
        {
            return services.GetRequiredService<ClientCredentialsGrant>().Handle(request);
        }

        // OpenIddict refuses a grant type it was not told to allow before this runs; this answers one it allows
        // but no handler here knows.
        return Reject(Errors.UnsupportedGrantType, "The grant type is not supported.");
    }

    /// <summary>An OAuth error response (400 with <c>error</c> and <c>error_description</c>), written by OpenIddict.</summary>
    internal static ForbidHttpResult Reject(string error, string description) =>
        TypedResults.Forbid(
            new AuthenticationProperties(new Dictionary<string, string?>
            {
                [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
                [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
            }),
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}

/// <summary>Log category for the token endpoint.</summary>
public sealed class TokenRequestLog;
