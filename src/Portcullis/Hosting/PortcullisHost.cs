using System.Net.Security;
using System.Security.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Admin;
using Portcullis.Audit;
using Portcullis.Email;
using Portcullis.Gateway;
using Portcullis.RateLimits;
using Portcullis.SignIn;
using Portcullis.Storage;
using Portcullis.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Hosting;

public static class PortcullisDefaults
{
    public const string Urls = "https://127.0.0.1:8443";
    public const string EnvironmentPrefix = "Portcullis__";
}

/// <summary>
/// The composition root shared by <c>serve</c>, the CLI commands and the tests: the same configuration, services
/// and storage everywhere.
/// <para>
/// The hosting feature owns what every feature shares: this composition root (it calls each feature's
/// <c>AddPortcullisX</c> and <c>MapX</c>), Kestrel and TLS, security headers, the client address behind trusted
/// proxies, problem types, JSON body rules, logging (sinks, redaction, log event ids), metrics, and the
/// configuration check (<see cref="Doctor"/>).
/// </para>
/// <para>
/// Uses every feature, to register and map it, and Tokens and Storage at start (keys, revocations, migrations).
/// </para>
/// </summary>
public static partial class PortcullisHost
{
    /// <summary>
    /// Configuration sources, last wins: appsettings.json, appsettings.{Environment}.json, <c>Portcullis__Section__Key</c>
    /// environment variables, then <paramref name="overrides"/> (command-line options such as --urls and --data-dir).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(IDictionary<string, string?>? overrides = null, string? environmentName = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            ApplicationName = typeof(PortcullisHost).Assembly.GetName().Name,
            EnvironmentName = environmentName,
        });
        // One JSON object per line on stdout (UTC time, level, event id, message, and the request's trace id, user id
        // and client IP). The JSON writer escapes CR/LF, U+2028/9, ANSI escapes and other control characters, so
        // user-supplied text cannot forge or split a line (L05). On a terminal, or with Logging:Format=Text, text lines
        // instead, escaped alike (Hosting/ConsoleLogFormat.cs).
        builder.Logging.ClearProviders();
        // Written by a batching writer (Hosting/ConsoleLog.cs), not the framework's one-lock-and-one-write-per-line
        // console provider; the formatter and its options are the framework's.
        JsonConsoleLogProvider.AddTo(builder.Logging, json =>
        {
            // No scopes: ASP.NET Core's request scope carries the raw request path (which may hold a name or an e-mail
            // address: the request line logs the route template instead) and connection ids, and formatting the scopes
            // costs CPU on every line (BENCHMARKS.md). The trace id comes from RequestLogEnricher.
            json.IncludeScopes = false;
            json.UseUtcTimestamp = true;
            json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });
        // Framework chatter (every SQL command, every request) stays out of the log unless configured otherwise.
        builder.Logging.AddFilter("Microsoft.EntityFrameworkCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("OpenIddict", LogLevel.Warning);
        builder.Configuration.AddEnvironmentVariables(PortcullisDefaults.EnvironmentPrefix);
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        ConfigurationCheck.ThrowIfValuesInvalid(builder.Configuration); // before anything binds: one line per bad value
        ConsoleLogFormats.Select(builder.Configuration, ConsoleLogFormats.StdoutIsTerminal); // a wrong Logging:Format stops here, in one line

        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<StorageOptions>().BindConfiguration(StorageOptions.Section);
        services.AddOptionsWithValidateOnStart<TlsOptions>().BindConfiguration(TlsOptions.Section);
        services.AddOptionsWithValidateOnStart<TokensOptions>().BindConfiguration(TokensOptions.Section);
        services.AddOptionsWithValidateOnStart<AccountOptions>().BindConfiguration(AccountOptions.Section).ValidateDataAnnotations();
        services.AddOptionsWithValidateOnStart<ClientOptions>().BindConfiguration(ClientOptions.Section);
        services.AddSingleton<IValidateOptions<TokensOptions>, TokenOptionsValidator>();
        services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IssuerResolver>();
        services.AddOptionsWithValidateOnStart<LoginThrottleOptions>().BindConfiguration(LoginThrottleOptions.Section);
        services.AddSingleton<LoginThrottle>();

        var storage = builder.Configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        var dataDirectory = Path.GetFullPath(storage.DataDirectory);
        services.AddPortcullisStorage(storage, dataDirectory);
        builder.AddPortcullisRedaction(dataDirectory); // classified log values are redacted (Hosting/Redaction.cs)
        FileLogProvider.AddTo(builder); // optional rolling file of the same JSON lines (Logging:File, Hosting/FileLog.cs)
        // The key ring is stored in the database beside the keys it protects, so it is itself encrypted with a
        // key-encryption key kept outside the database (Tokens/KeyEncryption.cs).
        services.AddOptions<KeyEncryptionOptions>().BindConfiguration(KeyEncryptionOptions.Section);
        var keyEncryption = KeyEncryption.Resolve(
            builder.Configuration.GetSection(KeyEncryptionOptions.Section).Get<KeyEncryptionOptions>() ?? new KeyEncryptionOptions(), storage);
        services.AddSingleton(keyEncryption);
        var dataProtection = services.AddDataProtection().PersistKeysToDbContext<PortcullisDb>().SetApplicationName("portcullis");
        if (keyEncryption.Current is { } kek)
        {
            dataProtection.ProtectKeysWithCertificate(kek.Certificate);
        }

        services.AddHttpContextAccessor();
        services.AddPortcullisClientAddress();
        services.AddPortcullisAccounts();
        services.AddPortcullisEmail();
        services.AddPortcullisAudit();
        services.AddPortcullisAdmin();
        services.AddPortcullisTokens();
        services.AddPortcullisSignIn();
        services.AddPortcullisAuthorization();
        services.AddPortcullisRateLimiting();
        services.AddPortcullisGateway(); // after authorization: it wraps the policy provider and 403 handler
        services.AddPortcullisTelemetry();
        services.AddPortcullisApiReference(); // the OpenAPI document and its page (Hosting/ApiReference.cs)
        services.AddPortcullisCors(); // off unless Cors:Origins lists one (Hosting/CrossOrigin.cs)
        services.AddExceptionHandler<DatabaseUnavailable>(); // F02: database down → 503, not 500
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            if (context.ProblemDetails.Type is null || context.ProblemDetails.Type.StartsWith("https://tools.ietf.org", StringComparison.Ordinal))
            {
                context.ProblemDetails.Type = ProblemTypes.ForStatus(status);
            }

            // Never an exception message or stack: the log has those, keyed by the trace id.
            context.ProblemDetails.Detail = status >= 500 ? null : context.ProblemDetails.Detail;
            context.ProblemDetails.Extensions.Remove("exception");
        });
        // After AddProblemDetails, so the framework's writer still answers every request that accepts JSON.
        services.AddSingleton<IProblemDetailsWriter, ProblemJsonWhateverAccept>();
        services.Configure<ExceptionHandlerOptions>(handler =>
        {
            // A client fault found while reading the request (a body arriving too slowly: 408, a bad framing: 400)
            // is the client's 4xx, not a 500, and no error with a stack trace is logged for it.
            handler.StatusCodeSelector = ex => ex is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError;
            handler.SuppressDiagnosticsCallback = context => context.Exception is BadHttpRequestException;
        });
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.AllowDuplicateProperties = false;
            json.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
            json.SerializerOptions.MaxDepth = JsonBody.MaxDepth;
        });

        ConfigureKestrel(builder, dataDirectory);
        return builder;
    }

    private static void ConfigureKestrel(WebApplicationBuilder builder, string dataDirectory)
    {
        var urls = builder.Configuration["urls"] ?? PortcullisDefaults.Urls;
        builder.WebHost.UseUrls(urls);
        var tls = builder.Configuration.GetSection(TlsOptions.Section).Get<TlsOptions>() ?? new TlsOptions();
        var hasHttps = urls.Contains("https://", StringComparison.OrdinalIgnoreCase);
        Certificates.Loaded? certificate = null;

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A JSON API: small bodies and headers, and slow clients cut off (slowloris, slow body).
            kestrel.Limits.MaxRequestBodySize = 64 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            kestrel.Limits.MaxRequestLineSize = 8 * 1024;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(20);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(60);
            kestrel.Limits.MinRequestBodyDataRate = new(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
            kestrel.Limits.MaxConcurrentConnections = 10_000;
            kestrel.Limits.MaxConcurrentUpgradedConnections = 0;
            if (!hasHttps)
            {
                return;
            }

            EnsurePrivateDirectory(dataDirectory);
            certificate ??= Certificates.Load(tls, dataDirectory, TimeProvider.System);
            CertificateInUse = certificate;
            kestrel.ConfigureHttpsDefaults(https =>
            {
                https.ServerCertificate = certificate.Certificate;
                https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
                // Linux offers CBC suites with TLS 1.2 by default (NET-07): ECDHE + AEAD only.
                https.OnAuthenticate = (_, ssl) => ssl.CipherSuitesPolicy = CipherSuites;
            });
        });
    }

    internal static Certificates.Loaded? CertificateInUse { get; private set; }

    public static readonly CipherSuitesPolicy CipherSuites = new(
    [
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]);

    /// <summary>The request pipeline, outermost first.</summary>
    public static WebApplication BuildApp(WebApplicationBuilder builder)
    {
        var app = builder.Build();
        app.UsePortcullisClientAddress();
        app.UseMiddleware<SecurityHeaders>();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRouting();
        // Outside every refusal (per-IP 429, 401, 403, per-user 429), so each request gets its one line; the line is
        // written when the response is done, so the enricher still sees the user authentication set further in.
        app.UseRequestLogging();
        app.UsePortcullisCors(); // preflights answered before the limits and authentication; refusals readable by allowed pages
        app.UsePortcullisIpRateLimiting(); // per-IP limits before authentication: bad-token floods are cut off cheaply
        app.UseAuthentication();
        app.UseAuthorization();
        app.UsePortcullisRateLimiting();

        app.MapTokenEndpoint();
        app.MapPortcullisSignIn();
        app.MapAccounts();
        app.MapAdmin();
        app.MapHealth();
        app.MapPortcullisGateway();
        app.MapPrometheusScrapingEndpoint("/metrics").RequirePermission(Access.Permissions.MetricsRead).RequireRateLimiting(RateLimitPolicies.Authenticated);
        app.MapApiReference(); // for signed-in callers only unless Api:PublicDocs (HDR-13)
        return app;
    }

    private static void MapTokenEndpoint(this WebApplication app) =>
        app.MapPost(TokenServices.TokenPath, TokenEndpoint.HandleAsync)
            .AllowAnonymous() // OpenIddict authenticates the client and the grant itself.
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("OAuth");

    private static void MapHealth(this WebApplication app)
    {
        var health = app.MapGroup("/health").AllowAnonymous().RequireRateLimiting(RateLimitPolicies.Anonymous).WithTags("Health");
        health.MapGet("/live", () => TypedResults.Ok(new HealthStatus("ok")));
        health.MapGet("/ready", async Task<IResult> (PortcullisDb db, Audit.AuditSealer audit, LogSinks logs, CancellationToken ct) =>
            audit.LastSealFailed || !await db.Database.CanConnectAsync(ct) ? TypedResults.Json(new HealthStatus("unavailable"), statusCode: 503)
            // A log sink losing lines: the server still answers correctly (and audits to the database), so this is
            // degraded, not down. Which sink, and how many lines, is in the metrics and the security.alert audit event,
            // not here: an anonymous caller has no business learning that the log is not being written.
            : logs.AnyFailing ? TypedResults.Ok(new HealthStatus("degraded"))
            : TypedResults.Ok(new HealthStatus("ok")));
    }

    public sealed record HealthStatus(string Status);

    /// <summary>
    /// Everything that must hold before the first request: insecure configuration refused, the database migrated,
    /// roles, the built-in client and token keys present, revocations loaded.
    /// </summary>
    public static async Task InitializeAsync(IServiceProvider services, CancellationToken ct = default)
    {
        var environment = services.GetRequiredService<IHostEnvironment>();
        var configuration = services.GetRequiredService<IConfiguration>();
        CheckStartupSecurity(environment, configuration, services.GetRequiredService<IssuerResolver>());

        var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        if (db.Database.IsSqlite())
        {
            var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(db.Database.GetConnectionString()).DataSource;
            if (Path.GetDirectoryName(Path.GetFullPath(file)) is { } directory)
            {
                EnsurePrivateDirectory(directory);
            }
        }

        // MigrateAsync also diffs the model against the snapshot (costly at start-up, BENCHMARKS.md); with nothing to
        // apply the one history-table query below is enough. A fresh database (every test server) still runs the full
        // check.
        if (storage.ShouldAutoMigrate && (await db.Database.GetPendingMigrationsAsync(ct)).Any())
        {
            await db.Database.MigrateAsync(ct);
        }

        if (db.Database.IsSqlite())
        {
            // WAL lets readers run beside the single writer; it is a property of the file and persists.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
            var file = Path.GetFullPath(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(db.Database.GetConnectionString()).DataSource);
            foreach (var path in new[] { file, file + "-wal", file + "-shm" }.Where(File.Exists))
            {
                // The database holds password hashes and protected keys: owner only.
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        var roles = scope.ServiceProvider.GetRequiredService<RoleManager<Role>>();
        // One query for the existing names instead of one per built-in role; RoleManager only for what is missing.
        var existingRoles = await db.Roles.AsNoTracking().Select(r => r.NormalizedName).ToListAsync(ct);
        foreach (var role in Roles.All)
        {
            if (!existingRoles.Contains(roles.NormalizeKey(role)))
            {
                await roles.CreateAsync(new Role { Id = Guid.NewGuid(), Name = role });
            }
        }

        await EnsureBuiltInClientAsync(scope.ServiceProvider, ct);
        // The key-encryption key loads (or, on SQLite's first start, is created) before anything reads the key ring,
        // so a missing one stops start-up with what to set; keys written in the clear before it existed are encrypted.
        var keyEncryption = services.GetRequiredService<KeyEncryption>();
        if (await keyEncryption.EnsureReadyAsync(db, ct) is > 0 and var encrypted)
        {
            LogClearKeysEncrypted(services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PortcullisHost)), encrypted, keyEncryption.Current!.Describe());
        }

        var keys = services.GetRequiredService<KeyRing>();
        await keys.EnsureKeysAsync(db, ct);
        await keys.ReloadAsync(db, ct);
        await services.GetRequiredService<RevocationState>().SyncAsync(db, ct);
    }

    [LoggerMessage(EventId = EventIds.Tokens.ClearDataProtectionKeysEncrypted, Level = LogLevel.Warning, Message = "{Count} Data Protection key(s) were stored unencrypted; they are now encrypted with the key-encryption key from {Source}. Older backups of the database still hold them in the clear.")]
    private static partial void LogClearKeysEncrypted(ILogger logger, int count, string source);

    /// <summary>Creates the state directory readable by its owner only.</summary>
    public static void EnsurePrivateDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public const string BuiltInClientId = "portcullis";

    private static async Task EnsureBuiltInClientAsync(IServiceProvider services, CancellationToken ct)
    {
        var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
        var enabled = services.GetRequiredService<IOptions<ClientOptions>>().Value.BuiltInClient;
        var existing = await applications.FindByClientIdAsync(BuiltInClientId, ct);
        if (!enabled)
        {
            if (existing is not null)
            {
                await applications.DeleteAsync(existing, ct);
            }

            return;
        }

        if (existing is not null)
        {
            return;
        }

        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = BuiltInClientId,
            DisplayName = "Portcullis first-party client",
            ClientType = ClientTypes.Public,
            Permissions =
            {
                OpenIddictConstants.Permissions.Endpoints.Token,
                OpenIddictConstants.Permissions.Endpoints.Revocation,
                OpenIddictConstants.Permissions.GrantTypes.Password,
                OpenIddictConstants.Permissions.GrantTypes.RefreshToken,
            },
        };
        descriptor.Settings[ClientSettings.FirstParty] = "true";
        await applications.CreateAsync(descriptor, ct);
    }

    /// <summary>Outside Development, refuses configuration that would make tokens or transport unsafe.</summary>
    private static void CheckStartupSecurity(IHostEnvironment environment, IConfiguration configuration, IssuerResolver issuer)
    {
        if (environment.IsDevelopment())
        {
            return;
        }

        var problems = new List<string>();
        var urls = (configuration["urls"] ?? PortcullisDefaults.Urls).Split(';', StringSplitOptions.RemoveEmptyEntries);
        if (!urls.Any(u => u.TrimStart().StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            problems.Add("Only HTTP URLs are bound: set --urls (or 'urls') to an https:// address, e.g. https://127.0.0.1:8443.");
        }

        if (issuer.Issuer.Scheme != Uri.UriSchemeHttps)
        {
            problems.Add("Tokens:Issuer must be an https:// URL.");
        }

        if (problems.Count > 0)
        {
            throw new StartupException(string.Join(Environment.NewLine, problems));
        }
    }
}
