using System.Collections.Immutable;
using System.Net;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Portcullis.Storage;

namespace Portcullis.Tokens;

/// <summary>
/// What each outcome of a password login leaves behind — a log line, a metric, an audit event, and an alert when the
/// throttle says so — so that <see cref="PasswordGrant"/> reads as its decisions. The call order inside each method
/// is the order the rows and lines were always written in.
/// </summary>
public sealed partial class LoginRecords(AuditLog audit, DenialAggregator denials, PortcullisMetrics metrics, ILogger<TokenRequestLog> logger)
{
    public async Task ThrottledAsync(IPAddress? clientIp, string? username, LoginThrottle.Alert stuffing, CancellationToken ct)
    {
        LogLoginThrottled(logger, username);
        metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "throttled"));
        if (stuffing != LoginThrottle.Alert.None)
        {
            await RaiseAlertAsync("credential_stuffing", $"ip:{clientIp}", ct);
        }

        // One row for the first refusal per name and minute, then one with the count (Audit/DenialAggregator.cs):
        // refusals cost no password work, so a row each would let a flood of them take the database's writes.
        var name = audit.PersonalName(username);
        if (denials.Denied(AuditEvents.LoginThrottled, "anonymous", HttpMethods.Post, name, "throttle", clientIp?.ToString()))
        {
            await audit.WriteAsync(AuditEvents.LoginThrottled, AuditOutcomes.Denied, name, ct: ct);
        }
    }

    /// <summary>Not a failed guess (nothing was checked): only the metric counts it.</summary>
    public void Busy() => metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "busy"));

    public async Task FailedAsync(string? username, User? known, string? clientId, LoginThrottle.Alert bruteForce, CancellationToken ct)
    {
        LogLoginFailed(logger, username);
        metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "failure"));
        await AuditLoginFailedAsync(audit, username, known, clientId, ct);
        if (bruteForce != LoginThrottle.Alert.None)
        {
            await RaiseAlertAsync("brute_force", known is null ? audit.PersonalName(username) : $"user:{known.Id}", ct);
        }
    }

    /// <summary>The right password, but an administrator requires a new one first: audited as a failed login.</summary>
    public Task PasswordChangeRequiredAsync(User user, string? clientId, CancellationToken ct) =>
        audit.WriteAsync(AuditEvents.LoginFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { client = clientId, reason = "password_change_required" }, ct);

    public Task EmailNotVerifiedAsync(User user, string? clientId, CancellationToken ct) =>
        audit.WriteAsync(AuditEvents.LoginFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { client = clientId, reason = "email_not_verified" }, ct);

    public void Succeeded(Guid userId, string? clientId, string? sessionId, ImmutableArray<string> scopes)
    {
        LogLoginSucceeded(logger, userId);
        metrics.Logins.Add(1, new KeyValuePair<string, object?>("outcome", "success"));
        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "password"));
        RecordLoginSucceeded(audit, userId, clientId, sessionId, scopes);
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

    private async Task RaiseAlertAsync(string kind, string target, CancellationToken ct)
    {
        LogSecurityAlert(logger, kind);
        metrics.SecurityAlerts.Add(1, new KeyValuePair<string, object?>("kind", kind));
        await audit.WriteAsync(AuditEvents.SecurityAlert, AuditOutcomes.Denied, target, new { kind }, ct);
    }
}
