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
/// <c>grant_type=authorization_code</c>: OpenIddict has checked the client, the <c>redirect_uri</c>, the PKCE verifier
/// and the code's lifetime, and a redeemed code has been refused (<see cref="EndSessionOnTokenReuse"/> ends its session). This refuses a code
/// whose session has ended since it was issued (sign-out, a disabled user, a password change), and signs in with the
/// roles read again.
/// </summary>
public sealed class AuthorizationCodeGrant(
    UserManager<User> users, RevocationState revocations, IOptions<TokensOptions> options, TimeProvider time,
    AuditLog audit, PortcullisMetrics metrics)
{
    private const string NoLongerValid = "The authorization code is no longer valid.";

    public async Task<Results<SignInHttpResult, ForbidHttpResult, ProblemHttpResult>> HandleAsync(HttpContext http, OpenIddictRequest request, CancellationToken ct)
    {
        var code = (await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        if (code is null
            || !Guid.TryParse(code.GetClaim(Claims.Subject), out var userId)
            || !long.TryParse(code.GetClaim(PortcullisClaims.SessionStart), out var sessionStart)
            || !int.TryParse(code.GetClaim(PortcullisClaims.SecurityEpoch), out var epoch)
            || code.GetClaim(PortcullisClaims.SessionId) is not { } sessionId
            || revocations.IsSessionRevoked(sessionId)
            || DateTimeOffset.FromUnixTimeSeconds(sessionStart) + options.Value.SessionAbsoluteLifetime <= time.GetUtcNow())
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
        TokenPrincipals.CopySignInClaims(code, identity);
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(code.GetScopes());
        principal.SetResources(code.GetResources());
        principal.SetAuthorizationId(code.GetAuthorizationId());
        TokenPrincipals.SetDestinations(principal);
        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "authorization_code"));
        audit.Record(AuditEvents.CodeRedeemed, AuditOutcomes.Success, $"session:{sessionId}", new { client = request.ClientId }, actor: $"user:{user.Id}");
        return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
