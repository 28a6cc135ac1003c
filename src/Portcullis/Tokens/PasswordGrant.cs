using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// <c>grant_type=password</c>, for first-party clients only (docs/adr/0001-password-grant-first-party-only.md): the
/// throttle, then the password check (Accounts), then the session and the sign-in. OpenIddict has already parsed the
/// request and authenticated the client.
/// </summary>
public sealed class PasswordGrant(
    Credentials credentials, LoginThrottle throttle, LoginRecords records, UserManager<User> users,
    IOpenIddictApplicationManager applications, IOpenIddictAuthorizationManager authorizations,
    PortcullisDb db, WriteLease lease, IOptions<TokensOptions> options, TimeProvider time, AuditLog audit,
    IOptions<Accounts.AccountOptions> accounts)
{
    // One answer for every failed login, whatever the reason: unknown user, wrong password, disabled account.
    private const string LoginFailed = "The username or password is incorrect.";

    /// <summary>The refusal for an account with a second factor (docs/sign-in.md).</summary>
    public const string SecondFactorRequired = "This account requires a second factor: use the browser sign-in (authorization code flow).";

    public async Task<Results<SignInHttpResult, ForbidHttpResult, ProblemHttpResult>> HandleAsync(HttpContext http, OpenIddictRequest request, CancellationToken ct)
    {
        var application = await applications.FindByClientIdAsync(request.ClientId!, ct);
        var settings = application is null ? null : await applications.GetSettingsAsync(application, ct);
        if (settings is null || !settings.TryGetValue(ClientSettings.FirstParty, out var firstParty) || firstParty != "true")
        {
            return TokenEndpoint.Reject(Errors.UnauthorizedClient, "This client may not use the password grant.");
        }

        // Throttled before any password work, by client IP and by username (existing or not, alike).
        if (throttle.Check(http.Connection.RemoteIpAddress, request.Username, out var stuffing) is { } wait)
        {
            await records.ThrottledAsync(http.Connection.RemoteIpAddress, request.Username, stuffing, ct);
            return Credentials.TooManyAttempts(http, wait);
        }

        var (user, known, busy) = await credentials.CheckAsync(request.Username, request.Password, ct);
        if (busy)
        {
            // Not a failed guess (nothing was checked): the throttle and the failure audit do not count it.
            records.Busy();
            return credentials.Busy(http);
        }

        if (user is null)
        {
            var bruteForce = throttle.Failed(request.Username);
            await records.FailedAsync(request.Username, known, request.ClientId, bruteForce, ct);
            return TokenEndpoint.Reject(Errors.InvalidGrant, LoginFailed);
        }

        throttle.Succeeded(request.Username);
        if (user.MustChangePassword)
        {
            await records.PasswordChangeRequiredAsync(user, request.ClientId, ct);
            // Only after the right password: this reveals nothing to someone who does not know it.
            return TokenEndpoint.Reject(Errors.InvalidGrant, "The password must be changed first: POST /api/accounts/password.");
        }

        if (accounts.Value.RequireVerifiedEmail && !user.EmailConfirmed)
        {
            await records.EmailNotVerifiedAsync(user, request.ClientId, ct);
            return TokenEndpoint.Reject(Errors.InvalidGrant, Accounts.Credentials.EmailNotVerified);
        }

        if (user.TwoFactorEnabled)
        {
            // Never a silent downgrade to the password alone: the grant has no place for a second factor (issue 19).
            // Said only after the right password, like the required change above.
            await audit.WriteAsync(AuditEvents.SecondFactorRequired, AuditOutcomes.Denied, $"user:{user.Id}", new { client = request.ClientId }, ct);
            return TokenEndpoint.Reject(Errors.InvalidGrant, SecondFactorRequired);
        }

        var identity = await TokenPrincipals.UserIdentityAsync(user, users, time.GetUtcNow().ToUnixTimeSeconds());
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(request.GetScopes());
        principal.SetResources(options.Value.Audience);

        // The session is created here (not ad hoc by OpenIddict) so its id can go into the access tokens, as the
        // first write of the login's one transaction (SignInTransaction commits it with the tokens).
        await SignInTransaction.BeginAsync(db, lease, ct);
        var authorization = await authorizations.CreateAsync(
            principal, user.Id.ToString(), (await applications.GetIdAsync(application!, ct))!,
            AuthorizationTypes.AdHoc, principal.GetScopes(), ct);
        var sessionId = await authorizations.GetIdAsync(authorization, ct);
        principal.SetAuthorizationId(sessionId);
        identity.SetClaim(PortcullisClaims.SessionId, sessionId);
        TokenPrincipals.SetDestinations(principal);
        records.Succeeded(user.Id, request.ClientId, sessionId, principal.GetScopes());
        return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
