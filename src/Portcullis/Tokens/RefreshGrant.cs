using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Audit;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// <c>grant_type=refresh_token</c>: OpenIddict has validated the refresh token and claimed it once
/// (<see cref="RedeemRefreshTokenOnce"/>); the session goes on if it may (<see cref="SessionContinuation"/>: not
/// ended, not past its absolute lifetime, the user not disabled or logged out everywhere since), with the next pair
/// carrying the roles read again.
/// </summary>
public sealed class RefreshGrant(SessionContinuation sessions, AuditLog audit, PortcullisMetrics metrics)
{
    private const string NoLongerValid = "The refresh token is no longer valid.";

    public async Task<Results<SignInHttpResult, ForbidHttpResult>> HandleAsync(HttpContext http, OpenIddictRequest request)
    {
        var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        if (await sessions.ContinueAsync(result.Principal) is not { } next)
        {
            return TokenEndpoint.Reject(Errors.InvalidGrant, NoLongerValid);
        }

        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "refresh_token"));
        audit.Record(AuditEvents.TokenRefreshed, AuditOutcomes.Success, $"session:{next.SessionId}", new { client = request.ClientId }, actor: $"user:{next.User.Id}");
        return TypedResults.SignIn(next.Principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
