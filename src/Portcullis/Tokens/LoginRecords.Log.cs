using Portcullis.Hosting;

namespace Portcullis.Tokens;

/// <summary>The password login's log lines (category <see cref="TokenRequestLog"/>; ids 2001-2004).</summary>
public sealed partial class LoginRecords
{
    [LoggerMessage(EventId = EventIds.Tokens.PasswordLoginFailed, Level = LogLevel.Information, Message = "Password login failed for {Username}.")]
    private static partial void LogLoginFailed(ILogger logger, [PiiData] string? username);

    [LoggerMessage(EventId = EventIds.Tokens.PasswordLoginSucceeded, Level = LogLevel.Information, Message = "Password login succeeded for user {UserId}.")]
    private static partial void LogLoginSucceeded(ILogger logger, Guid userId);

    // The typed name is personal data (and may be a password typed into the wrong field): classified, so the
    // logging pipeline writes only its keyed hash (Hosting/Redaction.cs).
    [LoggerMessage(EventId = EventIds.Tokens.PasswordLoginThrottled, Level = LogLevel.Warning, Message = "Password login throttled for {Username}.")]
    private static partial void LogLoginThrottled(ILogger logger, [PiiData] string? username);

    [LoggerMessage(EventId = EventIds.Tokens.LoginFloodAlert, Level = LogLevel.Warning, Message = "security.alert: {Kind}: a burst of failed logins tripped the throttle.")]
    private static partial void LogSecurityAlert(ILogger logger, string kind);
}
