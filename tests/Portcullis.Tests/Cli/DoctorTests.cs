using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// <c>portcullis doctor</c>: findings with severity and fix; exit 1 on high findings. On the provider of the pass:
/// SQLite, or the data directory's own PostgreSQL database with the suite's key-encryption key (PostgreSQL needs one
/// configured). The findings about the SQLite file and a key-encryption key created beside it are SQLite's; the
/// PostgreSQL-specific one (<c>database-tls</c>) is a check of the connection string that needs no server.
/// </summary>
public sealed class DoctorTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-doctor-").FullName;

    private string DataDirectory => Path.Combine(_dir, "data");

    public async ValueTask DisposeAsync()
    {
        await TestDatabase.DropAsync(DataDirectory);
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// The pass's storage: on SQLite nothing (a fresh install, whose key-encryption key is created in the data
    /// directory), on PostgreSQL the data directory's database and the suite's key-encryption key.
    /// </summary>
    private async Task<Dictionary<string, string?>> ForThisPassAsync() =>
        TestDatabase.IsPostgres ? await TestDatabase.SettingsForAsync(DataDirectory) : [];

    private async Task<(int Exit, JsonElement[] Findings)> RunAsync(params string[] extra)
    {
        var output = new StringWriter();
        var exit = await CliApp.RunAsync(["doctor", "--json", "--data-dir", DataDirectory, .. extra], new StringReader(""), output, new StringWriter(),
            await ForThisPassAsync());
        var findings = JsonSerializer.Deserialize<JsonElement[]>(output.ToString().Trim().Split('\n')[^1])!;
        return (exit, findings);
    }

    private static JsonElement? Find(JsonElement[] findings, string id) =>
        findings.Cast<JsonElement?>().FirstOrDefault(f => f!.Value.GetProperty("id").GetString() == id);

    [Fact]
    public async Task A_fresh_install_reports_the_self_signed_certificate_as_high_and_exits_1()
    {
        var (exit, findings) = await RunAsync();

        Assert.Equal(CliApp.Failed, exit);
        var selfSigned = Find(findings, "tls-self-signed");
        Assert.NotNull(selfSigned);
        Assert.Equal("high", selfSigned.Value.GetProperty("severity").GetString());
        Assert.False(string.IsNullOrWhiteSpace(selfSigned.Value.GetProperty("fix").GetString()));
        Assert.NotNull(Find(findings, "open-registration"));
        Assert.Null(Find(findings, "secret-file-permissions")); // created owner-only
    }

    [Fact]
    public async Task The_key_encryption_key_is_reported_medium_beside_the_database_and_high_when_others_can_read_it()
    {
        Assert.SkipWhen(TestDatabase.IsPostgres, "A key-encryption key created in the data directory is SQLite's; PostgreSQL needs one configured.");
        var (_, findings) = await RunAsync(); // first start: the key-encryption key is created in the data directory
        var kek = Path.Combine(_dir, "data", Portcullis.Tokens.KeyEncryption.DefaultFile);
        Assert.True(File.Exists(kek));
        Assert.Contains(kek, Find(findings, "key-encryption-key")!.Value.GetProperty("problem").GetString(), StringComparison.Ordinal);
        Assert.Equal("medium", Find(findings, "key-encryption-key-beside-database")!.Value.GetProperty("severity").GetString());
        Assert.Null(Find(findings, "key-encryption-key-permissions"));

        File.SetUnixFileMode(kek, (UnixFileMode)0b110_100_100);
        var (exit, after) = await RunAsync();

        Assert.Equal(CliApp.Failed, exit);
        var permissions = Find(after, "key-encryption-key-permissions");
        Assert.Equal("high", permissions!.Value.GetProperty("severity").GetString());
        Assert.Equal($"chmod 600 {kek}", permissions.Value.GetProperty("fix").GetString());
    }

    [Fact]
    public async Task A_key_encryption_key_kept_apart_from_the_database_is_not_reported_beside_it()
    {
        var elsewhere = Directory.CreateTempSubdirectory("portcullis-kek-").FullName;
        var kek = Path.Combine(elsewhere, "kek.pem");
        Portcullis.Tokens.KeyEncryption.Write(kek, Portcullis.Tokens.KeyEncryption.Create());
        try
        {
            var findings = await CheckAsync(new() { ["KeyEncryption:CertificatePath"] = kek });
            Assert.Contains(findings, f => f.Id == "key-encryption-key" && f.Problem.Contains("KeyEncryption:CertificatePath", StringComparison.Ordinal));
            Assert.DoesNotContain(findings, f => f.Id.StartsWith("key-encryption-key-", StringComparison.Ordinal));
            Assert.False(File.Exists(Path.Combine(_dir, "data", Portcullis.Tokens.KeyEncryption.DefaultFile)));
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_CA_issued_certificate_with_private_files_has_no_high_finding()
    {
        var (cert, key) = WriteCaIssuedCertificate();

        var findings = await CheckAsync(new() { ["Tls:CertificatePath"] = cert, ["Tls:KeyPath"] = key });

        Assert.DoesNotContain(findings, f => f.Severity == Doctor.Severity.High);
        Assert.Contains(findings, f => f.Id == "open-registration");
    }

    [Fact]
    public async Task A_world_readable_key_file_is_high_and_start_up_re_secures_the_database()
    {
        await RunAsync(); // creates the database (SQLite) and the development key
        var db = Path.Combine(_dir, "data", "portcullis.db");
        if (!TestDatabase.IsPostgres) // on PostgreSQL the database files are the cluster's, not in the data directory
        {
            File.SetUnixFileMode(db, (UnixFileMode)0b110_100_100);
        }

        File.SetUnixFileMode(Path.Combine(_dir, "data", "dev-key.pem"), (UnixFileMode)0b110_100_100);

        var (exit, findings) = await RunAsync();

        Assert.Equal(CliApp.Failed, exit);
        var permissions = Assert.Single(findings, f => f.GetProperty("id").GetString() == "secret-file-permissions");
        Assert.Equal("high", permissions.GetProperty("severity").GetString());
        Assert.Contains("dev-key.pem", permissions.GetProperty("problem").GetString(), StringComparison.Ordinal);
        if (!TestDatabase.IsPostgres)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(db));
        }
    }

    [Fact]
    public async Task A_weak_password_policy_an_extra_http_port_and_a_long_token_lifetime_are_reported()
    {
        var findings = await CheckAsync(new()
        {
            ["Accounts:MinPasswordLength"] = "8",
            ["urls"] = "https://127.0.0.1:8443;http://127.0.0.1:8080",
            ["Tokens:AccessTokenLifetime"] = "00:15:00",
        });

        Assert.Equal(Doctor.Severity.Medium, Assert.Single(findings, f => f.Id == "password-length").Severity);
        Assert.Equal(Doctor.Severity.Low, Assert.Single(findings, f => f.Id == "http-port").Severity);
        Assert.Equal(Doctor.Severity.Low, Assert.Single(findings, f => f.Id == "token-lifetime").Severity);
    }

    [Fact]
    public async Task Cors_is_reported_off_by_default_and_public_docs_off_in_Production()
    {
        var findings = await CheckAsync([]);

        Assert.Contains("CORS is off", Assert.Single(findings, f => f.Id == "cors").Problem, StringComparison.Ordinal);
        var docs = Assert.Single(findings, f => f.Id == "public-docs");
        Assert.Equal(Doctor.Severity.Info, docs.Severity);
        Assert.Contains("signed-in callers only", docs.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configured_cors_origins_are_listed_an_http_one_and_credentials_are_flagged_and_public_docs_in_Production_is_medium()
    {
        var findings = await CheckAsync(new()
        {
            ["Cors:Origins:0"] = "https://app.example",
            ["Cors:Origins:1"] = "http://localhost:5173",
            ["Cors:AllowCredentials"] = "true",
            ["Api:PublicDocs"] = "true",
        });

        var cors = Assert.Single(findings, f => f.Id == "cors");
        Assert.Contains("https://app.example, http://localhost:5173", cors.Problem, StringComparison.Ordinal);
        Assert.Equal(Doctor.Severity.Medium, Assert.Single(findings, f => f.Id == "cors-http-origin").Severity);
        Assert.Equal(Doctor.Severity.Low, Assert.Single(findings, f => f.Id == "cors-credentials").Severity);
        Assert.Equal(Doctor.Severity.Medium, Assert.Single(findings, f => f.Id == "public-docs").Severity);
    }

    [Fact]
    public async Task A_trusted_proxy_network_covering_every_address_is_high()
    {
        var findings = await CheckAsync(new() { ["Hosting:TrustedProxies:0"] = "0.0.0.0/0" });

        Assert.Equal(Doctor.Severity.High, Assert.Single(findings, f => f.Id == "trusted-proxies").Severity);
        Assert.DoesNotContain(findings, f => f.Id == "deprecated-setting");
    }

    [Fact]
    public async Task The_old_trusted_proxies_key_still_works_and_is_reported_for_renaming()
    {
        var old = await CheckAsync(new() { ["RateLimits:TrustedProxies:0"] = "0.0.0.0/0" });

        Assert.Equal(Doctor.Severity.High, Assert.Single(old, f => f.Id == "trusted-proxies").Severity); // still read
        var deprecated = Assert.Single(old, f => f.Id == "deprecated-setting");
        Assert.Equal(Doctor.Severity.Low, deprecated.Severity);
        Assert.Contains("Hosting:TrustedProxies", deprecated.Fix, StringComparison.Ordinal);

        // With both, the new key wins and the old one is reported as ignored.
        var both = await CheckAsync(new() { ["RateLimits:TrustedProxies:0"] = "0.0.0.0/0", ["Hosting:TrustedProxies:0"] = "10.0.0.5" });
        Assert.Equal(Doctor.Severity.Info, Assert.Single(both, f => f.Id == "trusted-proxies").Severity);
        Assert.Contains("ignored", Assert.Single(both, f => f.Id == "deprecated-setting").Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sqlite_synchronous_normal_is_medium_and_full_by_default_says_nothing()
    {
        Assert.SkipWhen(TestDatabase.IsPostgres, "A SQLite setting; the SQLite pass runs this.");
        var normal = await CheckAsync(new() { ["Storage:SqliteSynchronous"] = "Normal" });
        var full = await CheckAsync(new());

        Assert.Equal(Doctor.Severity.Medium, Assert.Single(normal, f => f.Id == "sqlite-synchronous-normal").Severity);
        Assert.DoesNotContain(full, f => f.Id == "sqlite-synchronous-normal");
    }

    [Fact]
    public async Task An_http_only_binding_is_high()
    {
        var findings = await CheckAsync(new() { ["urls"] = "http://127.0.0.1:8080" }, initialize: false);

        Assert.Equal(Doctor.Severity.High, Assert.Single(findings, f => f.Id == "http-only").Severity);
    }

    [Theory]
    [InlineData("Host=db.internal;Database=portcullis;Username=app;Password=x", "Prefer")] // Npgsql's default
    [InlineData("Host=db.internal;Database=portcullis;Username=app;Password=x;SSL Mode=Require", "Require")]
    [InlineData("Host=10.0.0.5:5432;Database=portcullis;Username=app;Password=x;SSL Mode=Disable", "Disable")]
    [InlineData("Host=127.0.0.1,db.internal;Database=portcullis;Username=app;Password=x;SSL Mode=Allow", "Allow")] // one remote host is enough
    [InlineData("Host=[2001:db8::5]:5432;Database=portcullis;Username=app;Password=x;SSL Mode=Prefer", "Prefer")]
    public void A_remote_postgres_connection_that_does_not_verify_the_server_certificate_is_high(string connectionString, string mode)
    {
        var finding = Doctor.DatabaseTransport(new StorageOptions { Provider = "Postgres", ConnectionString = connectionString });

        Assert.NotNull(finding);
        Assert.Equal(Doctor.Severity.High, finding.Severity);
        Assert.Equal("database-tls", finding.Id);
        Assert.Contains($"SSL Mode={mode}", finding.Problem, StringComparison.Ordinal);
        Assert.Contains("VerifyFull", finding.Fix, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", finding.Problem + finding.Fix, StringComparison.OrdinalIgnoreCase); // no secret echoed
    }

    [Theory]
    [InlineData("Host=db.internal;Database=portcullis;Username=app;Password=x;SSL Mode=VerifyFull;Root Certificate=/etc/ca.pem")]
    [InlineData("Host=db.internal;Database=portcullis;Username=app;Password=x;SSL Mode=VerifyCA")]
    [InlineData("Host=127.0.0.1;Port=5432;Database=portcullis;Username=app;Password=x")]
    [InlineData("Host=localhost;Database=portcullis;Username=app;Password=x;SSL Mode=Disable")]
    [InlineData("Host=::1;Database=portcullis;Username=app;Password=x")]
    [InlineData("Host=127.0.0.2:5433;Database=portcullis;Username=app;Password=x")]
    [InlineData("Host=/var/run/postgresql;Database=portcullis;Username=app")] // Unix socket
    public void A_verified_loopback_or_unix_socket_postgres_connection_has_no_transport_finding(string connectionString)
    {
        Assert.Null(Doctor.DatabaseTransport(new StorageOptions { Provider = "Postgres", ConnectionString = connectionString }));
        // SQLite never gets the finding, whatever the string.
        Assert.Null(Doctor.DatabaseTransport(new StorageOptions { Provider = "Sqlite", ConnectionString = "Data Source=/tmp/x.db" }));
    }

    private async Task<IReadOnlyList<Doctor.Finding>> CheckAsync(Dictionary<string, string?> testSettings, bool initialize = true)
    {
        var settings = await ForThisPassAsync();
        foreach (var (key, value) in testSettings)
        {
            settings[key] = value; // the test's own settings win
        }

        settings["Storage:DataDirectory"] = DataDirectory;
        await using var app = PortcullisHost.CreateBuilder(settings, "Production").Build();
        if (initialize)
        {
            await PortcullisHost.InitializeAsync(app.Services);
        }
        else
        {
            // Start-up would refuse this configuration; doctor still reports it. Storage only.
            PortcullisHost.EnsurePrivateDirectory(DataDirectory);
            if (!TestDatabase.IsPostgres) // PostgreSQL: a clone of the suite's migrated template (the app role may not migrate)
            {
                await using var scope = app.Services.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<Portcullis.Storage.PortcullisDb>().Database.MigrateAsync();
            }
        }

        return await Doctor.CheckAsync(app.Services);
    }

    private (string Cert, string Key) WriteCaIssuedCertificate()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(2));

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=portcullis.test", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        leafRequest.CertificateExtensions.Add(san.Build());
        using var leaf = leafRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), [1, 2, 3, 4]);

        var certPath = Path.Combine(_dir, "cert.pem");
        var keyPath = Path.Combine(_dir, "key.pem");
        File.WriteAllText(certPath, leaf.ExportCertificatePem());
        File.WriteAllText(keyPath, leafKey.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (certPath, keyPath);
    }
}
