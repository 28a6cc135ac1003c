using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using Portcullis.Storage;
using Portcullis.Tokens;
using Portcullis.Accounts;

namespace Portcullis.Hosting;

/// <summary>
/// Checks a configuration against the security bar (<c>portcullis doctor</c>, and logged at every start).
/// Each finding says what is wrong and what to set. High findings make <c>doctor</c> exit non-zero.
/// </summary>
public static partial class Doctor
{
    public enum Severity { Info, Low, Medium, High }

    public sealed record Finding(Severity Severity, string Id, string Problem, string Fix);

    public static async Task<IReadOnlyList<Finding>> CheckAsync(IServiceProvider services, CancellationToken ct = default)
    {
        var findings = new List<Finding>();
        var environment = services.GetRequiredService<IHostEnvironment>();
        var configuration = services.GetRequiredService<IConfiguration>();
        var time = services.GetRequiredService<TimeProvider>();
        var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
        var tls = services.GetRequiredService<IOptions<TlsOptions>>().Value;
        var tokens = services.GetRequiredService<IOptions<TokensOptions>>().Value;
        var accounts = services.GetRequiredService<IOptions<AccountOptions>>().Value;
        var dataDirectory = Path.GetFullPath(storage.DataDirectory);

        if (environment.IsDevelopment())
        {
            findings.Add(new(Severity.High, "debug-environment", "The Development environment relaxes start-up checks.",
                "Run with ASPNETCORE_ENVIRONMENT=Production (the default) outside a developer machine."));
        }

        var logLevel = configuration["Logging:LogLevel:Default"];
        if (logLevel is "Debug" or "Trace")
        {
            findings.Add(new(Severity.Medium, "debug-logging", $"Logging:LogLevel:Default is {logLevel}: framework internals reach the log.",
                "Set Logging:LogLevel:Default to Information or higher."));
        }

        findings.AddRange(ConfigurationCheck.Findings(configuration)); // misspelt keys: otherwise silently ignored
        CheckUrls(configuration["urls"] ?? PortcullisDefaults.Urls, findings);
        CheckCertificate(tls, dataDirectory, time, environment, findings);

        if (accounts.MinPasswordLength < 15)
        {
            findings.Add(new(Severity.Medium, "password-length", $"Accounts:MinPasswordLength is {accounts.MinPasswordLength}, below the NIST SP 800-63B-4 minimum of 15 for a single factor.",
                "Set Accounts:MinPasswordLength to 15 or more."));
        }

        if (accounts.AllowRegistration)
        {
            findings.Add(new(Severity.Low, "open-registration", "Anyone can create an account (POST /api/accounts).",
                "Set Accounts:AllowRegistration=false unless self-registration is wanted."));
        }

        if (tokens.AccessTokenLifetime > TimeSpan.FromMinutes(10))
        {
            findings.Add(new(Severity.Low, "token-lifetime", $"Access tokens live {tokens.AccessTokenLifetime}; outside resource servers see revocation only at expiry.",
                "Keep Tokens:AccessTokenLifetime at 00:10:00 or less."));
        }

        var email = services.GetRequiredService<IOptions<Email.EmailOptions>>().Value;
        findings.Add(email.Configured
            ? new(Severity.Info, "email", $"Outgoing mail goes through {email.Smtp.Host}:{email.Smtp.EffectivePort} ({email.Smtp.Security}).",
                "Check delivery with `portcullis email test --to you@example.com`.")
            : new(Severity.Low, "email-not-configured", "No outgoing mail is configured: password reset by e-mail is unavailable (its page and API say so).",
                "Set Email:Smtp:Host, Email:Smtp:From and the login (docs/configuration.md), then run `portcullis email test --to you@example.com`."));
                if (accounts.RequireVerifiedEmail && !email.Configured)
        {
            findings.Add(new(Severity.Medium, "verified-email-without-mail", "Accounts:RequireVerifiedEmail is on but no mail is configured: a new account can never verify its address, so it can never sign in.",
                "Configure Email:Smtp, or set Accounts:RequireVerifiedEmail=false."));
        }

        findings.AddRange(CrossOrigin.Check(services.GetRequiredService<IOptions<CrossOriginOptions>>().Value));
        findings.Add(ApiReference.Check(services.GetRequiredService<IOptions<ApiOptions>>().Value, environment));
        var hosting = services.GetRequiredService<IOptions<HostingOptions>>().Value;
        var proxies = hosting.TrustedProxies.Where(v => !string.IsNullOrWhiteSpace(v)).ToList();
        if (configuration.GetSection(HostingOptions.DeprecatedTrustedProxiesKey).GetChildren().Any())
        {
            findings.Add(new(Severity.Low, "deprecated-setting",
                hosting.TrustedProxiesKey == HostingOptions.DeprecatedTrustedProxiesKey
                    ? $"{HostingOptions.DeprecatedTrustedProxiesKey} is deprecated (still read): trusted proxies are a hosting setting now."
                    : $"{HostingOptions.DeprecatedTrustedProxiesKey} is deprecated and ignored: Hosting:TrustedProxies is set and wins.",
                $"Rename {HostingOptions.DeprecatedTrustedProxiesKey} to Hosting:TrustedProxies (environment: Portcullis__Hosting__TrustedProxies__0)."));
        }

        if (proxies.Count == 0)
        {
            findings.Add(new(Severity.Info, "trusted-proxies", "No trusted proxy is configured: X-Forwarded-For is ignored and the client IP is the connection's.", "Nothing to do unless Portcullis runs behind a reverse proxy (then set Hosting:TrustedProxies)."));
        }
        else if (proxies.Any(p => p.EndsWith("/0", StringComparison.Ordinal)))
        {
            findings.Add(new(Severity.High, "trusted-proxies", "A trusted-proxy network covers every address: any client can choose its own IP for rate limits and the audit trail.", "List only your reverse proxies' addresses in Hosting:TrustedProxies."));
        }
        else
        {
            findings.Add(new(Severity.Info, "trusted-proxies", $"X-Forwarded-For is read only from {proxies.Count} configured proxy address(es).", "Keep Hosting:TrustedProxies to your reverse proxies only."));
        }

        if (!storage.IsPostgres && string.Equals(storage.SqliteSynchronous, StorageOptions.SynchronousNormal, StringComparison.OrdinalIgnoreCase))
        {
            findings.Add(new(Severity.Medium, "sqlite-synchronous-normal",
                "Storage:SqliteSynchronous is Normal: a power loss or kernel crash can roll back the last commits, revocations and audit events included.",
                "Remove Storage:SqliteSynchronous (Full) unless the host has power protection, or move to PostgreSQL."));
        }

        if (DatabaseTransport(storage) is { } transport)
        {
            findings.Add(transport);
        }

        CheckPermissions(storage, dataDirectory, tls, findings);
        CheckKeyEncryption(services.GetRequiredService<KeyEncryption>(), storage, dataDirectory, environment, findings);
        await CheckSigningKeysAsync(services, time, findings, ct);
        return findings;
    }

    private static void CheckUrls(string urls, List<Finding> findings)
    {
        var list = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!list.Any(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            findings.Add(new(Severity.High, "http-only", "No HTTPS address is bound.", "Set --urls to an https:// address."));
        }
        else if (list.Any(u => u.StartsWith("http://", StringComparison.OrdinalIgnoreCase)))
        {
            findings.Add(new(Severity.Low, "http-port", "An HTTP port is bound; it answers every request with 400 and serves nothing.",
                "Remove the http:// address from --urls unless a load balancer health check needs it."));
        }
    }

    private static void CheckCertificate(TlsOptions tls, string dataDirectory, TimeProvider time, IHostEnvironment environment, List<Finding> findings)
    {
        var configured = !string.IsNullOrWhiteSpace(tls.CertificatePath);
        var path = configured ? tls.CertificatePath! : Path.Combine(dataDirectory, Certificates.DevCertFile);
        if (!File.Exists(path))
        {
            if (configured)
            {
                findings.Add(new(Severity.High, "tls-certificate-missing", "Tls:CertificatePath does not exist.", "Point Tls:CertificatePath and Tls:KeyPath at readable PEM files."));
            }

            return;
        }

        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(path));
        var now = time.GetUtcNow().UtcDateTime;
        var left = certificate.NotAfter.ToUniversalTime() - now;
        if (left <= TimeSpan.Zero)
        {
            findings.Add(new(Severity.High, "tls-expired", "The TLS certificate has expired.", "Install a current certificate."));
        }
        else if (left < TimeSpan.FromDays(30))
        {
            findings.Add(new(Severity.Medium, "tls-expiring", $"The TLS certificate expires in {left.Days} days.", "Renew the certificate."));
        }

        var bits = certificate.GetECDsaPublicKey()?.KeySize ?? certificate.GetRSAPublicKey()?.KeySize ?? 0;
        var isEc = certificate.GetECDsaPublicKey() is not null;
        if ((isEc && bits < 256) || (!isEc && bits < 3072))
        {
            findings.Add(new(bits < 2048 && !isEc ? Severity.High : Severity.Medium, "tls-key-size", $"The TLS key has {bits} bits.",
                "Use ECDSA P-256 or RSA with at least 3072 bits (ASVS V11.2.3)."));
        }

        if (certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData) && !environment.IsDevelopment())
        {
            findings.Add(new(Severity.High, "tls-self-signed", "The TLS certificate is self-signed: clients cannot verify the server without pinning it.",
                "Set Tls:CertificatePath and Tls:KeyPath to a certificate from a trusted CA."));
        }
    }

    /// <summary>
    /// PostgreSQL over the network must verify the server (<c>SSL Mode=VerifyFull</c>, or <c>VerifyCA</c>): with
    /// <c>Prefer</c> (Npgsql's default) or <c>Require</c> anyone on the path can pose as the database and read every
    /// password hash and token the application sends. Loopback addresses and Unix sockets never leave the host.
    /// </summary>
    public static Finding? DatabaseTransport(StorageOptions storage)
    {
        if (!storage.IsPostgres || string.IsNullOrWhiteSpace(storage.ConnectionString))
        {
            return null; // SQLite is a local file; a missing connection string stops start-up (StorageOptionsValidator).
        }

        const string Fix = "Add 'SSL Mode=VerifyFull;Root Certificate=<the database CA file>' to Storage:ConnectionString (see docs/deployment.md).";
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(storage.ConnectionString);
        }
        catch (ArgumentException)
        {
            return new(Severity.High, "database-tls", "Storage:ConnectionString cannot be read as an Npgsql connection string.", Fix);
        }

        var remote = (builder.Host ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(host => !IsLocal(host))
            .ToList();
        if (remote.Count == 0 || builder.SslMode is SslMode.VerifyFull or SslMode.VerifyCA)
        {
            return null;
        }

        return new(Severity.High, "database-tls",
            $"PostgreSQL at {string.Join(", ", remote)} is reached with SSL Mode={builder.SslMode}: the server's certificate is not verified, so the connection can be intercepted.",
            Fix);
    }

    /// <summary>A Unix socket directory (or abstract socket), <c>localhost</c>, or a loopback address, with or without a port.</summary>
    private static bool IsLocal(string host)
    {
        if (host.StartsWith('/') || host.StartsWith('@') || host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var address = host;
        if (host.StartsWith('['))
        {
            address = host[1..Math.Max(1, host.IndexOf(']', StringComparison.Ordinal))]; // [::1]:5432
        }
        else if (host.Count(c => c == ':') == 1)
        {
            address = host[..host.IndexOf(':', StringComparison.Ordinal)]; // 127.0.0.1:5432, localhost:5432
            if (address.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip);
    }

    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private static void CheckPermissions(StorageOptions storage, string dataDirectory, TlsOptions tls, List<Finding> findings)
    {
        if (Directory.Exists(dataDirectory) && (File.GetUnixFileMode(dataDirectory) & GroupOrOther) != 0)
        {
            findings.Add(new(Severity.Medium, "data-directory-permissions", "The data directory is accessible to other users.", $"chmod 700 {dataDirectory}"));
        }

        var secrets = new List<string>();
        if (storage.ConnectionString is null)
        {
            secrets.Add(Path.Combine(dataDirectory, "portcullis.db"));
        }

        secrets.Add(tls.KeyPath is { Length: > 0 } key ? key : Path.Combine(dataDirectory, Certificates.DevKeyFile));
        foreach (var file in secrets.Where(File.Exists))
        {
            if ((File.GetUnixFileMode(file) & GroupOrOther) != 0)
            {
                findings.Add(new(Severity.High, "secret-file-permissions", $"{Path.GetFileName(file)} (password hashes or private keys) is readable by other users.", $"chmod 600 {file}"));
            }
        }
    }

    /// <summary>
    /// The key-encryption key is what keeps a copy of the database from yielding the signing keys: it must exist, be
    /// readable by its owner only, and in production not travel with the SQLite file in one directory (one backup,
    /// one copy of the directory, and both are gone).
    /// </summary>
    private static void CheckKeyEncryption(KeyEncryption keyEncryption, StorageOptions storage, string dataDirectory, IHostEnvironment environment, List<Finding> findings)
    {
        const string Fix = "Create one with 'portcullis keys new-kek --out /etc/portcullis/kek.pem' and set KeyEncryption:CertificatePath to it (see docs/deployment.md).";
        if (keyEncryption.Current is not { } key)
        {
            findings.Add(new(Severity.High, "key-encryption-key-missing", "No key-encryption key: the server refuses to start.", Fix));
            return;
        }

        findings.Add(new(Severity.Info, "key-encryption-key", $"The key ring in the database is encrypted with the key-encryption key from {key.Describe()}.",
            "Keep it out of database backups; 'portcullis keys rotate-kek' replaces it."));
        if (key.File is not { } file || !File.Exists(file))
        {
            return;
        }

        if ((File.GetUnixFileMode(file) & GroupOrOther) != 0)
        {
            findings.Add(new(Severity.High, "key-encryption-key-permissions", $"The key-encryption key {file} is readable by other users.", $"chmod 600 {file}"));
        }

        if (!storage.IsPostgres && !environment.IsDevelopment()
            && string.Equals(Path.GetDirectoryName(Path.GetFullPath(file)), Path.GetDirectoryName(SqliteFile(storage, dataDirectory)), StringComparison.Ordinal))
        {
            findings.Add(new(Severity.Medium, "key-encryption-key-beside-database",
                "The key-encryption key sits in the same directory as the SQLite database: a copy or backup of that directory holds both, and with both the signing keys can be recovered.",
                Fix));
        }
    }

    private static string SqliteFile(StorageOptions storage, string dataDirectory) =>
        Path.GetFullPath(storage.ConnectionString is { Length: > 0 } connection
            ? new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connection).DataSource
            : Path.Combine(dataDirectory, "portcullis.db"));

    private static async Task CheckSigningKeysAsync(IServiceProvider services, TimeProvider time, List<Finding> findings, CancellationToken ct)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var active = await db.SigningKeys.AsNoTracking()
            .Where(k => k.Use == KeyRing.SigningUse && k.RetiredAt == null)
            .Select(k => k.CreatedAt)
            .ToListAsync(ct);
        if (active.Count == 0)
        {
            findings.Add(new(Severity.High, "signing-key-missing", "No active token signing key.", "Run 'portcullis keys rotate'."));
        }
        else if (time.GetUtcNow() - active.Max() > TimeSpan.FromDays(90))
        {
            findings.Add(new(Severity.Medium, "signing-key-age", $"The signing key is {(time.GetUtcNow() - active.Max()).Days} days old.", "Run 'portcullis keys rotate' (every 90 days or sooner)."));
        }
    }

    /// <summary>Logs every finding above Info once at start-up.</summary>
    public static async Task LogAsync(IServiceProvider services, ILogger logger, CancellationToken ct)
    {
        foreach (var finding in await CheckAsync(services, ct))
        {
            if (finding.Severity >= Severity.Low)
            {
                LogFinding(logger, finding.Severity, finding.Id, finding.Problem, finding.Fix);
            }
        }
    }

    [LoggerMessage(EventId = EventIds.Hosting.ConfigurationFinding, Level = LogLevel.Warning, Message = "Configuration check {Severity} {FindingId}: {Problem} Fix: {Fix}")]
    private static partial void LogFinding(ILogger logger, Severity severity, string findingId, string problem, string fix);
}
