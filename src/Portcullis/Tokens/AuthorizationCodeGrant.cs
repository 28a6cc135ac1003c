using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Audit;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// <c>grant_type=authorization_code</c>: OpenIddict has checked the client, the <c>redirect_uri</c>, the PKCE verifier
/// and the code's lifetime, and a redeemed code has been refused (<see cref="EndSessionOnTokenReuse"/> ends its
/// session). The code's browser session goes on if it may (<see cref="SessionContinuation"/>: a sign-out, a disabled
/// user or a password change since the code was issued refuses it), with the roles read again.
/// </summary>
public sealed class AuthorizationCodeGrant(SessionContinuation sessions, AuditLog audit, PortcullisMetrics metrics)
{
    private const string NoLongerValid = "The authorization code is no longer valid.";

    public async Task<Results<SignInHttpResult, ForbidHttpResult, ProblemHttpResult>> HandleAsync(HttpContext http, OpenIddictRequest request, CancellationToken ct)
    {
        var code = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        if (await sessions.ContinueAsync(code.Principal) is not { } next)
        {
            return TokenEndpoint.Reject(Errors.InvalidGrant, NoLongerValid);
        }

        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "authorization_code"));
        audit.Record(AuditEvents.CodeRedeemed, AuditOutcomes.Success, $"session:{next.SessionId}", new { client = request.ClientId }, actor: $"user:{next.User.Id}");
        return TypedResults.SignIn(next.Principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
