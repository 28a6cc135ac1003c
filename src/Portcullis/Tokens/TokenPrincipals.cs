using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>The claims each grant signs in with: built in one place so a password login and a refresh agree.</summary>
public static class TokenPrincipals
{
    /// <summary>A user's identity: id, roles, security epoch and session start. The session id is added by the caller.</summary>
    public static ClaimsIdentity UserIdentity(Guid userId, IEnumerable<string> roles, int securityEpoch, long sessionStart)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, userId.ToString());
        identity.SetClaims(Claims.Role, [.. roles]);
        identity.SetClaim(PortcullisClaims.SecurityEpoch, securityEpoch);
        identity.SetClaim(PortcullisClaims.SessionStart, sessionStart);
        return identity;
    }

    /// <summary>
    /// The <c>acr</c> values Portcullis states (and advertises in discovery): the password only, or the password and a
    /// second factor (<c>amr</c> holds <c>mfa</c>).
    /// </summary>
    public static class AuthenticationContexts
    {
        public const string Password = "urn:portcullis:pwd";
        public const string MultiFactor = "urn:portcullis:mfa";

        public static readonly IReadOnlyList<string> All = [Password, MultiFactor];

        public static string For(IEnumerable<string> methods) => methods.Contains("mfa") ? MultiFactor : Password;
    }

    /// <summary>Roles are read from the store each time, so a change shows in the next access token.</summary>
    internal static async Task<ClaimsIdentity> UserIdentityAsync(User user, UserManager<User> users, long sessionStart) =>
        UserIdentity(user.Id, await users.GetRolesAsync(user), user.SecurityEpoch, sessionStart);

    /// <summary>A client acting for itself (client credentials): it is its own subject.</summary>
    public static ClaimsIdentity ClientIdentity(string? clientId)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, clientId);
        identity.SetClaim(Claims.ClientId, clientId);
        return identity;
    }

    /// <summary>
    /// What a browser sign-in adds and every later token of its session keeps: when and how the person authenticated
    /// (<c>auth_time</c>, <c>amr</c>, <c>acr</c>), and the <c>nonce</c> the code was asked with (OpenIddict puts it in the ID token).
    /// </summary>
    public static void CopySignInClaims(ClaimsPrincipal from, ClaimsIdentity to)
    {
        foreach (var claim in from.Claims)
        {
            if (claim.Type is Claims.AuthenticationTime or Claims.AuthenticationMethodReference or Claims.AuthenticationContextReference or Claims.Private.Nonce)
            {
                to.AddClaim(new Claim(claim.Type, claim.Value, claim.ValueType));
            }
        }
    }

    /// <summary>
    /// Only ids, roles and how the person signed in (<c>amr</c>, <c>acr</c>) reach the access token: no username or
    /// e-mail (RFC 8725 §3.12). The ID token says who signed in, when and how; profile data is served by the userinfo endpoint, by scope.
    /// </summary>
    public static void SetDestinations(ClaimsPrincipal principal) =>
        principal.SetDestinations(claim => claim.Type switch
        {
            Claims.Subject or PortcullisClaims.SessionId => [Destinations.AccessToken, Destinations.IdentityToken],
            Claims.Role or Claims.ClientId or PortcullisClaims.SecurityEpoch => [Destinations.AccessToken],
            // How the person signed in also reaches the access token, so an API can ask for a second factor itself.
            Claims.AuthenticationMethodReference or Claims.AuthenticationContextReference => [Destinations.AccessToken, Destinations.IdentityToken],
            Claims.AuthenticationTime => [Destinations.IdentityToken],
            _ => [],
        });
}
