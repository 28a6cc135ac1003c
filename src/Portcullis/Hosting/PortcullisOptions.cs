using System.ComponentModel.DataAnnotations;

namespace Portcullis.Hosting;

/// <summary>Where state lives. Section <c>Storage</c>.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";

    public const string Sqlite = "Sqlite";
    public const string Postgres = "Postgres";

    /// <summary><c>Sqlite</c> (default) or <c>Postgres</c> (PostgreSQL 15+, needs <see cref="ConnectionString"/>).</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>Directory for the SQLite file, the development certificate and other state. Default <c>./data</c>.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>
    /// SQLite: overrides the default <c>Data Source={DataDirectory}/portcullis.db</c>. PostgreSQL: required, an Npgsql
    /// connection string (<c>Host=…;Database=…;Username=…;Password=…;SSL Mode=VerifyFull</c>).
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Apply migrations at start. Default: true on SQLite, false on PostgreSQL (run <c>portcullis migrate</c>).</summary>
    public bool? AutoMigrate { get; set; }

    /// <summary>
    /// Seconds a database connection attempt or command may take before the request fails with 503. Default 15.
    /// </summary>
    public int TimeoutSeconds { get; set; } = 15;

    /// <summary>
    /// SQLite only: <c>Full</c> (default) or <c>Normal</c>, SQLite's <c>synchronous</c> setting in WAL mode. <c>Full</c>
    /// flushes the log to disk at every commit, so a committed change — a revocation, a password change, an audit
    /// event — survives a power loss; on an ordinary disk that costs a few milliseconds per commit and bounds all
    /// writes to a few hundred commits per second. <c>Normal</c> flushes only at checkpoints: the database cannot be
    /// corrupted and nothing is lost when the process crashes, but a power loss or kernel crash can roll back the
    /// last commits. See docs/deployment.md.
    /// </summary>
    public string SqliteSynchronous { get; set; } = SynchronousFull;

    public const string SynchronousFull = "Full";
    public const string SynchronousNormal = "Normal";

    public bool IsPostgres => string.Equals(Provider, Postgres, StringComparison.OrdinalIgnoreCase);

    /// <summary>The effective auto-migration setting: explicit, else the provider's default.</summary>
    public bool ShouldAutoMigrate => AutoMigrate ?? !IsPostgres;
}

/// <summary>HTTPS. Section <c>Tls</c>.</summary>
public sealed class TlsOptions
{
    public const string Section = "Tls";

    /// <summary>PEM certificate (chain) file. When unset, a self-signed certificate is created under the data directory.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key file matching <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary><c>Strict-Transport-Security</c> max-age in seconds. Default 31536000 (one year).</summary>
    public int HstsMaxAgeSeconds { get; set; } = 31536000;
}

/// <summary>Tokens. Section <c>Tokens</c>.</summary>
public sealed class TokensOptions
{
    public const string Section = "Tokens";

    /// <summary>The exact issuer (<c>iss</c>). Default: the first https URL Portcullis listens on.</summary>
    public string? Issuer { get; set; }

    /// <summary>The audience (<c>aud</c>) of access tokens. Default <c>portcullis</c>.</summary>
    public string Audience { get; set; } = "portcullis";

    /// <summary>Access-token lifetime. Default 10 minutes; 1 to 15 minutes allowed (ASVS V7.1.1).</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A refresh token not used for this long dies (idle timeout). Default 14 days.</summary>
    public TimeSpan RefreshTokenIdleLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>A session (the refresh-token family) dies this long after login, however often it rotates. Default 30 days.</summary>
    public TimeSpan SessionAbsoluteLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Accepted clock skew when validating tokens. Default 30 s; at most 60 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often each instance reads new revocations and key changes written by others. Default 2 s.</summary>
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Largest accepted bearer token in bytes. Default 8192.</summary>
    public int MaxTokenBytes { get; set; } = 8192;

    /// <summary>Access tokens remembered after a full validation, so a repeated token skips the signature check
    /// (revocation is still checked on every request). Default 4096 entries; 0 turns the cache off.</summary>
    public int ValidatedTokenCacheSize { get; set; } = 4096;
}

/// <summary>Accounts and passwords. Section <c>Accounts</c>.</summary>
public sealed class AccountOptions
{
    public const string Section = "Accounts";

    /// <summary>Self-registration at <c>POST /api/accounts</c>. Default true.</summary>
    public bool AllowRegistration { get; set; } = true;

    /// <summary>Minimum password length in Unicode code points. Default 15 (NIST SP 800-63B-4 for single-factor).</summary>
    [Range(8, 64)]
    public int MinPasswordLength { get; set; } = 15;

    /// <summary>Maximum password length in code points. Default 1024; longer passwords are rejected before hashing.</summary>
    [Range(64, 1024)]
    public int MaxPasswordLength { get; set; } = 1024;

    /// <summary>Argon2id memory in KiB. Default 19456 (19 MiB, OWASP minimum).</summary>
    [Range(19456, 1048576)]
    public int Argon2MemoryKiB { get; set; } = 19456;

    /// <summary>Argon2id iterations. Default 2.</summary>
    [Range(2, 10)]
    public int Argon2Iterations { get; set; } = 2;
}

/// <summary>The built-in first-party client. Section <c>Clients</c>.</summary>
public sealed class ClientOptions
{
    public const string Section = "Clients";

    /// <summary>Create (and keep) the public first-party client <c>portcullis</c> for the password and refresh grants. Default true.</summary>
    public bool BuiltInClient { get; set; } = true;
}
