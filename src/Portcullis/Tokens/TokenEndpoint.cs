using System.Collections.Immutable;
using System.Security.Claims;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// The token endpoint's decisions (OpenIddict has already parsed the request and authenticated the client):
/// the password grant for first-party clients, refresh with rotation, and client credentials.
/// </summary>
public static partial class TokenEndpoint
{
    public const string FirstPartySetting = "portcullis:first_party";

    // One answer for every failed login, whatever the reason: unknown user, wrong password, disabled account.
    private const string LoginFailed = "The username or password is incorrect.";

    public static async Task<IResult> HandleAsync(
        HttpContext http,
        UserManager<User> users,
        Argon2PasswordHasher hasher,
        PasswordPolicy passwords,
        IOpenIddictApplicationManager applications,
        IOpenIddictAuthorizationManager authorizations,
        RevocationState revocations,
        IOptions<TokensOptions> options,
        TimeProvider time,
        LoginThrottle throttle,
        AuditLog audit,
        DenialAggregator denials,
        PortcullisDb db,
        WriteLease lease,
        PortcullisMetrics metrics,
        PasswordHashingLimiter hashing,
        ILogger<TokenRequestLog> logger)
    {
        var request = http.GetOpenIddictServerRequest()
            ?? throw new InvalidOperationException("The OpenIddict request is missing.");
        var ct = http.RequestAborted;

        if (request.IsPasswordGrantType())
        {
            var application = await applications.FindByClientIdAsync(request.ClientId!, ct);
            var settings = application is null ? null : await applications.GetSettingsAsync(application, ct);
            if (settings is null || !settings.TryGetValue(FirstPartySetting, out var firstParty) || firstParty != "true")
            {
                return Reject(Errors.UnauthorizedClient, "This client may not use the password grant.");
            }

            // Throttled before any password work, by client IP and by username (existing or not, alike).
            if (throttle.Check(http.Connection.RemoteIpAddress, request.Username, out var stuffing) is { } wait)
            {
                LogLoginThrottled(logger, request.Username);
                metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "throttled"));
                if (stuffing != LoginThrottle.Alert.None)
                {
                    await RaiseAlertAsync(audit, metrics, logger, "credential_stuffing", $"ip:{http.Connection.RemoteIpAddress}", ct);
                }

                // One row for the first refusal per name and minute, then one with the count (Audit/DenialAggregator.cs):
                // refusals cost no password work, so a row each would let a flood of them take the database's writes.
                var name = audit.PersonalName(request.Username);
                if (denials.Denied(AuditEvents.LoginThrottled, "anonymous", HttpMethods.Post, name, "throttle", http.Connection.RemoteIpAddress?.ToString()))
                {
                    await audit.WriteAsync(AuditEvents.LoginThrottled, AuditOutcomes.Denied, name, ct: ct);
                }

                return TooManyAttempts(http, wait);
            }

            var (user, known, busy) = await CheckAsync(request.Username, request.Password, users, hasher, passwords, hashing, ct);
            if (busy)
            {
                // Not a failed guess (nothing was checked): the throttle and the failure audit do not count it.
                metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "busy"));
                return hashing.Busy(http);
            }

            if (user is null)
            {
                var bruteForce = throttle.Failed(request.Username);
                LogLoginFailed(logger, request.Username);
                metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "failure"));
                await AuditLoginFailedAsync(audit, request.Username, known, request.ClientId, ct);
                if (bruteForce != LoginThrottle.Alert.None)
                {
                    await RaiseAlertAsync(audit, metrics, logger, "brute_force", known is null ? audit.PersonalName(request.Username) : $"user:{known.Id}", ct);
                }

                return Reject(Errors.InvalidGrant, LoginFailed);
            }

            throttle.Succeeded(request.Username);
            if (user.MustChangePassword)
            {
                await audit.WriteAsync(AuditEvents.LoginFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { client = request.ClientId, reason = "password_change_required" }, ct);
                // Only after the right password: this reveals nothing to someone who does not know it.
                return Reject(Errors.InvalidGrant, "The password must be changed first: POST /api/accounts/password.");
            }

            var identity = await BuildUserIdentityAsync(user, users, time.GetUtcNow().ToUnixTimeSeconds());
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
            SetDestinations(principal);
            LogLoginSucceeded(logger, user.Id);
            metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "success"));
            metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "password"));
            RecordLoginSucceeded(audit, user.Id, request.ClientId, sessionId, principal.GetScopes());
            return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsRefreshTokenGrantType())
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
                return Reject(Errors.InvalidGrant, "The refresh token is no longer valid.");
            }

            var user = await users.FindByIdAsync(userId.ToString());
            if (user is null || user.IsDisabled || user.SecurityEpoch != epoch)
            {
                return Reject(Errors.InvalidGrant, "The refresh token is no longer valid.");
            }

            // Roles are read again so a change shows in the next access token.
            var identity = await BuildUserIdentityAsync(user, users, sessionStart);
            identity.SetClaim(PortcullisClaims.SessionId, sessionId);
            var principal = new ClaimsPrincipal(identity);
            principal.SetScopes(old.GetScopes());
            principal.SetResources(old.GetResources());
            principal.SetAuthorizationId(old.GetAuthorizationId());
            SetDestinations(principal);
            metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "refresh_token"));
            audit.Record(AuditEvents.TokenRefreshed, AuditOutcomes.Success, $"session:{sessionId}", new { client = request.ClientId }, actor: $"user:{user.Id}");
            return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        if (request.IsClientCredentialsGrantType())
        {
            var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, request.ClientId);
            identity.SetClaim(Claims.ClientId, request.ClientId);
            var principal = new ClaimsPrincipal(identity);
            principal.SetScopes(request.GetScopes());
            principal.SetResources(options.Value.Audience);
            SetDestinations(principal);
            metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "client_credentials"));
            audit.Record(AuditEvents.TokenIssued, AuditOutcomes.Success, $"client:{request.ClientId}",
                new { grant = "client_credentials", scopes = principal.GetScopes() }, actor: $"client:{request.ClientId}");
            return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
        }

        return Reject(Errors.UnsupportedGrantType, "The grant type is not supported.");
    }

    /// <summary>
    /// The audit work of a successful password login: one event, staged here and saved by OpenIddict's next
    /// SaveChanges (the access-token entry's insert), in the same transaction. <c>bench audit</c> measures this call.
    /// </summary>
    internal static void RecordLoginSucceeded(AuditLog audit, Guid userId, string? clientId, string? sessionId, ImmutableArray<string> scopes) =>
        audit.Record(AuditEvents.LoginSucceeded, AuditOutcomes.Success, $"user:{userId}",
            new { client = clientId, session = sessionId, scopes }, actor: $"user:{userId}");

    /// <summary>
    /// The audit work of a failed password login: its own SaveChanges, since nothing else is written. The account,
    /// if the name exists; otherwise only a mask (the "name" may be a mistyped password). <c>bench audit</c> measures it.
    /// </summary>
    internal static Task AuditLoginFailedAsync(AuditLog audit, string? username, User? known, string? clientId, CancellationToken ct) =>
        audit.WriteAsync(AuditEvents.LoginFailed, AuditOutcomes.Failure,
            known is null ? audit.PersonalName(username) : $"user:{known.Id}", new { client = clientId }, ct);

    /// <summary>
    /// The verdict, and the account the name belongs to (if any) for the audit trail: one lookup. <see cref="Busy"/>:
    /// password hashing was at capacity and the password was not checked.
    /// </summary>
    internal readonly record struct CredentialCheck(User? Valid, User? Known, bool Busy = false);

    /// <summary>
    /// Verifies a login with equal work whatever the outcome: an unknown user costs a dummy hash, a disabled user
    /// the real one. A password too long to be valid is refused before any hashing (long-password DoS). Admission
    /// to hashing (<see cref="PasswordHashingLimiter"/>) is asked for every name alike, after the same lookup, so a
    /// busy answer says nothing about the account.
    /// </summary>
    internal static async Task<CredentialCheck> CheckAsync(
        string? username, string? password, UserManager<User> users, Argon2PasswordHasher hasher, PasswordPolicy passwords,
        PasswordHashingLimiter hashing, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(password) || passwords.IsOverLong(password))
        {
            return new CredentialCheck(null, await FindAsync(username, users)); // no hashing, so no permit
        }

        // Looked up before admission: the hash then runs in the synchronous part of the work, on the limiter's thread.
        var user = await FindAsync(username, users);
        var admission = await hashing.RunAsync(async () =>
        {
            if (user is null)
            {
                hasher.VerifyDummy(password);
                return new CredentialCheck(null, null);
            }

            // CheckPasswordAsync also rewrites a hash made with older parameters.
            var valid = await users.CheckPasswordAsync(user, password);
            return new CredentialCheck(valid && !user.IsDisabled ? user : null, user);
        }, ct);
        return admission.Admitted ? admission.Value : new CredentialCheck(null, null, Busy: true);
    }

    private static async Task<User?> FindAsync(string? username, UserManager<User> users) =>
        string.IsNullOrEmpty(username) || username.Length > UsernameRules.MaxLength * 4 || UsernameRules.Validate(username) is not null
            ? null
            : await users.FindByNameAsync(username);

    /// <summary>A user's identity in its tokens (also what bench/Portcullis.Bench's <c>audit</c> times a login with).</summary>
    internal static async Task<ClaimsIdentity> BuildUserIdentityAsync(User user, UserManager<User> users, long sessionStart)
    {
        var identity = new ClaimsIdentity(TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, user.Id.ToString());
        identity.SetClaims(Claims.Role, [.. await users.GetRolesAsync(user)]);
        identity.SetClaim(PortcullisClaims.SecurityEpoch, user.SecurityEpoch);
        identity.SetClaim(PortcullisClaims.SessionStart, sessionStart);
        return identity;
    }

    /// <summary>Only ids and roles reach the access token: no username or e-mail (RFC 8725 §3.12).</summary>
    internal static void SetDestinations(ClaimsPrincipal principal) =>
        principal.SetDestinations(claim => claim.Type switch
        {
            Claims.Subject => [Destinations.AccessToken, Destinations.IdentityToken],
            Claims.Role or Claims.ClientId or PortcullisClaims.SecurityEpoch or PortcullisClaims.SessionId => [Destinations.AccessToken],
            _ => [],
        });

    private static ForbidHttpResult Reject(string error, string description) =>
        TypedResults.Forbid(
            new AuthenticationProperties(new Dictionary<string, string?>
            {
                [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
                [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
            }),
            [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

    private static async Task RaiseAlertAsync(AuditLog audit, PortcullisMetrics metrics, ILogger logger, string kind, string target, CancellationToken ct)
    {
        LogSecurityAlert(logger, kind);
        metrics.SecurityAlerts.Add(1, new KeyValuePair<string, object?>("kind", kind));
        await audit.WriteAsync(AuditEvents.SecurityAlert, AuditOutcomes.Denied, target, new { kind }, ct);
    }

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "security.alert: {Kind}: a burst of failed logins tripped the throttle.")]
    private static partial void LogSecurityAlert(ILogger logger, string kind);

    /// <summary>The throttled answer of every credential endpoint: 429 problem+json with Retry-After.</summary>
    internal static ProblemHttpResult TooManyAttempts(HttpContext http, TimeSpan wait)
    {
        http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many login attempts; try again later.", type: ProblemTypes.TooManyRequests);
    }

    // The typed name is personal data (and may be a password typed into the wrong field): classified, so the
    // logging pipeline writes only its keyed hash (Hosting/Redaction.cs).
    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Password login throttled for {Username}.")]
    private static partial void LogLoginThrottled(ILogger logger, [PiiData] string? username);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Password login failed for {Username}.")]
    private static partial void LogLoginFailed(ILogger logger, [PiiData] string? username);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Password login succeeded for user {UserId}.")]
    private static partial void LogLoginSucceeded(ILogger logger, Guid userId);
}

/// <summary>Log category for the token endpoint.</summary>
public sealed class TokenRequestLog;
