using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// What the refresh and authorization-code grants share: the presented token (a refresh token or a code) continues a
/// session. It is refused when the session has ended or outlived its absolute lifetime, or the user is gone, disabled
/// or has moved their security epoch on (logged out everywhere, changed password). Otherwise the next tokens carry
/// the roles read again, the session's id and start, and how the person signed in.
/// </summary>
public sealed class SessionContinuation(UserManager<User> users, RevocationState revocations, IOptions<TokensOptions> options, TimeProvider time)
{
    public sealed record Continued(ClaimsPrincipal Principal, User User, string SessionId);

    /// <summary>The principal to sign in with, or null when the session may not go on.</summary>
    public async Task<Continued?> ContinueAsync(ClaimsPrincipal? presented)
    {
        if (presented is null
            || !Guid.TryParse(presented.GetClaim(Claims.Subject), out var userId)
            || !long.TryParse(presented.GetClaim(PortcullisClaims.SessionStart), out var sessionStart)
            || !int.TryParse(presented.GetClaim(PortcullisClaims.SecurityEpoch), out var epoch)
            || presented.GetClaim(PortcullisClaims.SessionId) is not { } sessionId
            || revocations.IsSessionRevoked(sessionId)
            || DateTimeOffset.FromUnixTimeSeconds(sessionStart) + options.Value.SessionAbsoluteLifetime <= time.GetUtcNow())
        {
            return null;
        }

        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null || user.IsDisabled || user.SecurityEpoch != epoch)
        {
            return null;
        }

        var identity = await TokenPrincipals.UserIdentityAsync(user, users, sessionStart);
        identity.SetClaim(PortcullisClaims.SessionId, sessionId);
        TokenPrincipals.CopySignInClaims(presented, identity);
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(presented.GetScopes());
        principal.SetResources(presented.GetResources());
        principal.SetAuthorizationId(presented.GetAuthorizationId());
        TokenPrincipals.SetDestinations(principal);
        return new Continued(principal, user, sessionId);
    }
}
