namespace Portcullis.Audit;

/// <summary>
/// The audit catalogue: stable numeric ids in ranges per area, and names from the OWASP logging vocabulary where
/// one exists. Listed in docs/audit-events.md (a test keeps the two equal). Ids are never reused.
/// </summary>
public static class AuditEvents
{
    public sealed record Definition(int Id, string Name, string Description);

    // 1000-1999 authentication
    public static readonly Definition LoginSucceeded = new(1001, "authn_login_success", "A password login succeeded and issued tokens (details: client, session, scopes).");
    public static readonly Definition LoginFailed = new(1002, "authn_login_fail", "A password login failed (unknown user, wrong password or disabled account: one answer).");
    public static readonly Definition LoginThrottled = new(1003, "authn_login_fail_max", "A login was refused by the per-account or per-IP throttle (the first refusal per name and minute; the repeats as one event with their count).");
    public static readonly Definition LoginInvalidInput = new(1004, "input_validation_fail", "A credential endpoint refused malformed input.");
    public static readonly Definition BrowserSignedIn = new(1005, "authn_signin_success", "A person signed in on the sign-in page and a browser session began (details: session).");
    public static readonly Definition BrowserSignedOut = new(1006, "authn_signout", "A browser session was ended by signing out (on the account page or by a relying party's logout request).");
    public static readonly Definition SecondFactorFailed = new(1010, "authn_mfa_fail", "A wrong or already used authenticator or recovery code at sign-in, or when turning the authenticator app on or off (details: method).");
    public static readonly Definition SecondFactorThrottled = new(1011, "authn_mfa_fail_max", "A second-factor code was refused by the per-account or per-IP throttle.");
    public static readonly Definition RecoveryCodeUsed = new(1012, "authn_mfa_recovery_code_used", "A recovery code was used to sign in; it no longer works and every other session of the user ended (details: remaining).");
    public static readonly Definition SecondFactorRequired = new(1013, "authn_login_mfa_required", "The password grant was refused for an account with a second factor (it must sign in through the browser).");

    // 2000-2999 tokens and sessions
    public static readonly Definition TokenIssued = new(2001, "authn_token_created", "Tokens were issued by the client-credentials grant (a password login is recorded as authn_login_success).");
    public static readonly Definition TokenRefreshed = new(2002, "authn_token_refreshed", "A refresh token was redeemed for a new pair.");
    public static readonly Definition TokenRevoked = new(2003, "authn_token_revoked", "A token or session was revoked (RFC 7009 or logout).");
    public static readonly Definition TokenReuse = new(2004, "authn_token_reuse", "A redeemed refresh token was presented again; its session was ended.");
    public static readonly Definition LoggedOutEverywhere = new(2005, "session_end_all", "A user ended all of their sessions.");
    public static readonly Definition CodeIssued = new(2006, "authn_code_issued", "The authorization endpoint issued an authorization code (details: client, session, scopes).");
    public static readonly Definition CodeRedeemed = new(2007, "authn_code_redeemed", "An authorization code was exchanged for tokens.");
    public static readonly Definition CodeReplayed = new(2008, "authn_code_replay", "A redeemed authorization code was presented again; what was issued for it was revoked.");

    // 3000-3999 accounts
    public static readonly Definition Registered = new(3001, "user_created", "An account registered itself.");
    public static readonly Definition PasswordChanged = new(3002, "authn_password_change", "A user changed their password.");
    public static readonly Definition PasswordChangeFailed = new(3003, "authn_password_change_fail", "A password change was refused (wrong current password).");
    public static readonly Definition ProfileChanged = new(3004, "user_updated", "A user changed their own profile.");
    public static readonly Definition SessionEnded = new(3005, "session_end", "A user ended one of their own sessions (an operator's is session_end_by_admin).");
    public static readonly Definition ConsentGranted = new(3006, "consent_granted", "A user allowed a third-party client the scopes it asked for.");
    public static readonly Definition ConsentRevoked = new(3007, "consent_revoked", "A user took back the consent given to a client (its sessions end with it).");
    public static readonly Definition SecondFactorEnabled = new(3020, "mfa_enabled", "A user turned the authenticator app on and got new recovery codes; every session of the user ended.");
    public static readonly Definition SecondFactorDisabled = new(3021, "mfa_disabled", "A user turned the authenticator app off (details: proof, password or code); every session of the user ended.");
    public static readonly Definition PasswordResetRequested = new(3008, "authn_password_reset_request", "A password reset link was asked for: success when an account has the address and the link was queued, failure when none has (target: the address, redacted).");
    public static readonly Definition PasswordReset = new(3009, "authn_password_reset", "A password was reset with an e-mailed link; every session of the account ended.");
    public static readonly Definition EmailVerified = new(3011, "user_email_verified", "A user confirmed their e-mail address with the link sent at sign-up.");
    public static readonly Definition RegistrationEmailTaken = new(3012, "user_create_email_taken", "A sign-up named an address another account has: the answer was the usual one and the address's owner was told by mail (target: that account).");
    public static readonly Definition PasswordResetFailed = new(3010, "authn_password_reset_fail", "A reset link was refused: unknown, used, expired, or issued before the account's security stamp changed.");

    // 4000-4999 administration
    public static readonly Definition UserCreatedByAdmin = new(4001, "user_created_by_admin", "An operator created an account.");
    public static readonly Definition UserDisabled = new(4002, "user_disabled", "A user was disabled.");
    public static readonly Definition UserEnabled = new(4003, "user_enabled", "A user was enabled.");
    public static readonly Definition UserDeleted = new(4004, "user_deleted", "A user was deleted.");
    public static readonly Definition RoleAssigned = new(4005, "authz_change", "A role was given to a user.");
    public static readonly Definition RoleRemoved = new(4006, "authz_change_revoke", "A role was taken from a user.");
    public static readonly Definition SessionsEndedByAdmin = new(4007, "session_end_by_admin", "An operator ended a user's sessions.");
    public static readonly Definition PasswordChangeRequired = new(4008, "authn_password_change_required", "An operator required a user to change their password.");
    public static readonly Definition RoleCreated = new(4101, "role_created", "A custom role was created.");
    public static readonly Definition RoleUpdated = new(4102, "role_updated", "A custom role's permissions changed.");
    public static readonly Definition RoleDeleted = new(4103, "role_deleted", "A custom role was deleted.");
    public static readonly Definition ClientCreated = new(4201, "client_created", "An OAuth client was created.");
    public static readonly Definition ClientDeleted = new(4202, "client_deleted", "An OAuth client was deleted.");
    public static readonly Definition ClientSecretRotated = new(4203, "client_secret_rotated", "A client's secret was replaced.");
    public static readonly Definition KeyRotated = new(4301, "key_rotated", "The token signing key was rotated.");
    public static readonly Definition KeyEncryptionKeyRotated = new(4302, "kek_rotated", "The key ring was re-encrypted under a new key-encryption key.");

    // 5000-5999 authorization
    public static readonly Definition AccessDenied = new(5001, "authz_fail", "An authenticated caller lacked the permission a route requires (repeats of the same denial: one event per actor, route and permission per minute, with the count).");

    // 6000-6999 gateway
    public static readonly Definition GatewayDenied = new(6001, "gateway_authz_fail", "A gateway route refused a caller lacking a required role or scope (repeats aggregated like authz_fail).");
    public static readonly Definition GatewayInvalidRequest = new(6002, "gateway_input_validation_fail", "A gateway route refused a request: a path that could escape its policy, a wrong media type, an oversized body or one failing the route's schema.");
    public static readonly Definition GatewayUpstreamFault = new(6003, "gateway_upstream_fault", "A gateway upstream was unreachable (502) or too slow (504).");
    public static readonly Definition GatewayUnauthenticated = new(6004, "gateway_authn_fail", "A gateway route refused a request without a valid access token (401; repeats aggregated like authz_fail).");

    // 7000-7999 abuse protection
    public static readonly Definition RateLimited = new(7001, "excess_rate_limit_exceeded", "Requests were refused by a rate limit, or with 503 because password hashing was at capacity (policy `password-hashing`) (one event per route, policy and client IP per minute, with the count).");

    // 8000-8999 monitoring
    public static readonly Definition SecurityAlert = new(8001, "security.alert", "A burst of failed logins: many accounts from one IP (credential stuffing) or one account under repeated guessing (brute force); or a log sink losing lines (kind log_sink_failed, once per episode).");

    // 9000-9999 the audit trail itself
    public static readonly Definition AuditPruned = new(9001, "audit_pruned", "Old audit events were removed by the retention command.");

    public static readonly IReadOnlyList<Definition> All =
    [
        LoginSucceeded, LoginFailed, LoginThrottled, LoginInvalidInput, BrowserSignedIn, BrowserSignedOut,
        SecondFactorFailed, SecondFactorThrottled, RecoveryCodeUsed, SecondFactorRequired,
        TokenIssued, TokenRefreshed, TokenRevoked, TokenReuse, LoggedOutEverywhere, CodeIssued, CodeRedeemed, CodeReplayed,
        Registered, PasswordChanged, PasswordChangeFailed, ProfileChanged, SessionEnded, ConsentGranted, ConsentRevoked,
        SecondFactorEnabled, SecondFactorDisabled,
        PasswordResetRequested, PasswordReset, PasswordResetFailed, EmailVerified, RegistrationEmailTaken,
        UserCreatedByAdmin, UserDisabled, UserEnabled, UserDeleted, RoleAssigned, RoleRemoved, SessionsEndedByAdmin, PasswordChangeRequired,
        RoleCreated, RoleUpdated, RoleDeleted, ClientCreated, ClientDeleted, ClientSecretRotated, KeyRotated, KeyEncryptionKeyRotated,
        AccessDenied,
        GatewayDenied, GatewayInvalidRequest, GatewayUpstreamFault, GatewayUnauthenticated,
        RateLimited,
        SecurityAlert,
        AuditPruned,
    ];
}

public static class AuditOutcomes
{
    public const string Success = "success";
    public const string Failure = "failure";
    public const string Denied = "denied";
}
