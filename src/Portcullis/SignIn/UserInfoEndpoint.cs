using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Access;
using Portcullis.Storage;
using Portcullis.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.SignIn;

/// <summary>
/// <c>/connect/userinfo</c> (OpenID Connect Core §5.3): OpenIddict has validated the access token; this refuses one
/// whose session or user has ended since (the same checks as the API's), and answers by scope — <c>sub</c> always,
/// <c>name</c> and <c>preferred_username</c> with <c>profile</c>, <c>email</c> and <c>email_verified</c> with <c>email</c>.
/// </summary>
public static class UserInfoEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext http, RevocationState revocations, UserManager<User> users)
    {
        // RFC 6750 §2.3: a token in the URL ends up in logs and histories. The header, or a form body (§2.2), as on
        // the API, which never reads the query string; OpenIddict alone would take it from there.
        if (http.Request.Query.ContainsKey(Parameters.AccessToken))
        {
            return Refuse(Errors.InvalidRequest, "The access token must not be sent in the query string.");
        }

        var principal = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        if (principal is null
            || !Guid.TryParse(principal.GetClaim(Claims.Subject), out var userId)
            || !int.TryParse(principal.GetClaim(PortcullisClaims.SecurityEpoch), out var epoch)
            || principal.GetClaim(PortcullisClaims.SessionId) is not { } sessionId
            || revocations.IsSessionRevoked(sessionId)
            || (principal.GetClaim(Claims.JwtId) is { } jti && revocations.IsTokenRevoked(jti))
            || await users.FindByIdAsync(userId.ToString()) is not { } user
            || user.IsDisabled || user.SecurityEpoch != epoch)
        {
            return Refuse(Errors.InvalidToken, "The access token is no longer valid.");
        }

        var claims = new Dictionary<string, object?>(StringComparer.Ordinal) { [Claims.Subject] = user.Id.ToString() };
        if (principal.HasScope(PortcullisScopes.Profile))
        {
            claims[Claims.Name] = user.UserName;
            claims[Claims.PreferredUsername] = user.UserName;
        }

        if (principal.HasScope(PortcullisScopes.Email) && !string.IsNullOrEmpty(user.Email))
        {
            claims[Claims.Email] = user.Email;
            claims[Claims.EmailVerified] = user.EmailConfirmed;
        }

        return Results.Json(claims);
    }

    private static IResult Refuse(string error, string description) =>
        Results.Challenge(
            new AuthenticationProperties(new Dictionary<string, string?>
            {
                [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
                [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
            }),
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}
