namespace Portcullis.Hosting;

/// <summary>
/// Every log event id the product writes, with its name, grouped by feature: each feature owns a block of a
/// thousand ids (<c>Block</c> .. <c>Block + 999</c>) and an id is never reused, since log queries and alerts key on
/// it (docs/logging.md lists the blocks). Like YARP's <c>EventIds</c>, but <c>const int</c>: the
/// <c>[LoggerMessage]</c> attribute needs a constant. A test checks that the ids are unique and inside their block,
/// and that no <c>[LoggerMessage]</c> in src/ uses a bare number. Tests write their own events in 9000–9999.
/// </summary>
internal static class EventIds
{
    /// <summary>Start-up, configuration checks, the request line and the log sinks (the serve command included).</summary>
    internal static class Hosting
    {
        internal const int Block = 1000;
        internal const int ConfigurationFinding = 1001;
        internal const int Started = 1002;
        internal const int RequestCompleted = 1100;

        /// <summary>Written by hand, not by a logger (<see cref="LogLineWriter"/>): the lines a sink lost.</summary>
        internal const int LogLinesDropped = 1101;
        internal const int LogSinkFailed = 1102;
        internal const int LogSinkRecovered = 1103;
        internal const int LogSinkAlertNotAudited = 1104;
    }

    /// <summary>Logins through the token endpoint, token keys and revocations, refresh-token reuse, key encryption.</summary>
    internal static class Tokens
    {
        internal const int Block = 2000;
        internal const int PasswordLoginFailed = 2001;
        internal const int PasswordLoginSucceeded = 2002;
        internal const int PasswordLoginThrottled = 2003;
        internal const int LoginFloodAlert = 2004;
        internal const int KeysReloaded = 2101;
        internal const int RevocationSyncFailed = 2102;
        internal const int RefreshTokenReuse = 2201;
        internal const int AuthorizationCodeReplay = 2202;
        internal const int ClearDataProtectionKeysEncrypted = 2301;
    }

    internal static class Accounts
    {
        internal const int Block = 3000;
        internal const int PasswordHashingAtCapacity = 3001;
    }

    /// <summary>Failures of the audit trail's own background work (the audit events have ids of their own: AuditEvents).</summary>
    internal static class Audit
    {
        internal const int Block = 4000;
        internal const int SealFailed = 4901;
        internal const int RateLimitRejectionsNotAudited = 4902;
        internal const int DenialsNotAudited = 4903;
    }

    /// <summary>
    /// Retired, never to be reused: 5002 (<c>rate_limits_disabled</c>, left with the <c>RateLimits:Enabled</c> setting)
    /// and 5003 (<c>db_unavailable</c>, now <see cref="Storage.DatabaseUnavailable"/>).
    /// </summary>
    internal static class RateLimits
    {
        internal const int Block = 5000;
        internal const int RateLimitExceeded = 5001;
    }

    internal static class Gateway
    {
        internal const int Block = 6000;
        internal const int RequestRefused = 6001;
        internal const int UpstreamFault = 6002;
        internal const int RoutesReloaded = 6010;
        internal const int ReloadRejected = 6011;
    }

    /// <summary>Outgoing mail: the outbox sender.</summary>
    internal static class Email
    {
        internal const int Block = 8000;
        internal const int Sent = 8001;
        internal const int Retry = 8002;
        internal const int GaveUp = 8003;
        internal const int OutboxError = 8004;
    }

    /// <summary>The database. Until issue 21 the outage was 5003, inside the rate-limit block.</summary>
    internal static class Storage
    {
        internal const int Block = 7000;
        internal const int DatabaseUnavailable = 7001;
    }
}
