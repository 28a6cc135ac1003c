using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// <c>grant_type=refresh_token</c>: OpenIddict has validated the refresh token and claimed it once
/// (<see cref="RedeemRefreshTokenOnce"/>); this refuses a session that has ended or outlived its absolute lifetime and
/// a user disabled or logged out everywhere since, and issues the next pair with the roles read again.
/// </summary>
public sealed class RefreshGrant(
    UserManager<User> users, RevocationState revocations, IOptions<TokensOptions> options, TimeProvider time,
    AuditLog audit, PortcullisMetrics metrics)
{
    private const string NoLongerValid = "The refresh token is no longer valid.";

    public async Task<Results<SignInHttpResult, ForbidHttpResult>> HandleAsync(HttpContext http, OpenIddictRequest request)
    {
        var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        var old = result.Principal;
        var now = time.GetUtcNow();
        if (old is null
            || !Guid.TryParse(old.GetClaim(Claims.Subject), out var userId)
            || !long.TryParse(old.GetClaim(PortcullisClaims.SessionStart), out var sessionStart)
            || !int.TryParse(old.GetClaim(PortcullisClaims.SecurityEpoch), out var epoch)
            || old.GetClaim(PortcullisClaims.SessionId) is not { } sessionId
            || revocations.IsSessionRevoked(sessionId)
            || DateTimeOffset.FromUnixTimeSeconds(sessionStart) + options.Value.SessionAbsoluteLifetime <= now)
        {
            return TokenEndpoint.Reject(Errors.InvalidGrant, NoLongerValid);
        }

        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null || user.IsDisabled || user.SecurityEpoch != epoch)
        {
            return TokenEndpoint.Reject(Errors.InvalidGrant, NoLongerValid);
        }

        var identity = await TokenPrincipals.UserIdentityAsync(user, users, sessionStart);
        identity.SetClaim(PortcullisClaims.SessionId, sessionId);
        TokenPrincipals.CopySignInClaims(old, identity);
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(old.GetScopes());
        principal.SetResources(old.GetResources());
        principal.SetAuthorizationId(old.GetAuthorizationId());
        TokenPrincipals.SetDestinations(principal);
        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "refresh_token"));
        audit.Record(AuditEvents.TokenRefreshed, AuditOutcomes.Success, $"session:{sessionId}", new { client = request.ClientId }, actor: $"user:{user.Id}");
        return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
