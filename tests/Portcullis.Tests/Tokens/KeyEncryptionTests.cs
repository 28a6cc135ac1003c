using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// Keys at rest: the Data Protection key ring lives in the database beside the signing keys it protects, so it is
/// encrypted with a key-encryption key that lives elsewhere. Whoever holds the database alone (a backup, a snapshot, a
/// read-only injection) recovers no signing key; with the key-encryption key as well, they do — which is also how
/// these tests know the first half is not passing by accident.
/// </summary>
public sealed class KeyEncryptionTests
{
    /// <summary>Settings for a server whose key-encryption key is its own file (not the suite's shared one).</summary>
    private static Dictionary<string, string?> OwnKey(string dataDirectory, out string kekFile)
    {
        if (TestDatabase.IsPostgres)
        {
            // PostgreSQL takes the key from configuration only.
            kekFile = Path.Combine(dataDirectory, "configured-kek.pem");
            if (!File.Exists(kekFile))
            {
                KeyEncryption.Write(kekFile, KeyEncryption.Create());
            }

            return new() { ["KeyEncryption:CertificatePath"] = kekFile, ["Tokens:Issuer"] = Issuer };
        }

        // SQLite: no setting at all, so the default applies: a file created in the data directory on first start.
        kekFile = Path.Combine(dataDirectory, KeyEncryption.DefaultFile);
        return new() { ["KeyEncryption:CertificatePath"] = null, ["Tokens:Issuer"] = Issuer };
    }

    // The issuer normally contains the (free, changing) port; a fixed one keeps tokens valid across a restart.
    private const string Issuer = "https://portcullis.test/";

    [Fact]
    public async Task A_copy_of_the_database_alone_yields_no_signing_key_and_with_the_key_encryption_key_it_does()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        var server = await PortcullisServer.StartAsync(OwnKey(dataDirectory, out var kekFile), dataDirectory: dataDirectory);
        var published = await PublishedKeyAsync(server);
        await server.StopKeepingDataAsync();
        var scratch = Directory.CreateTempSubdirectory("portcullis-stolen-").FullName;
        try
        {
            // The attacker's copy: the database files only, in a directory of their own.
            var connection = CopyDatabase(dataDirectory, scratch);

            var (rings, protectedKey) = await ReadStolenAsync(connection, published.KeyId!);
            Assert.NotEmpty(rings);
            foreach (var xml in rings)
            {
                // Every Data Protection key is wrapped; no master key is in the clear.
                Assert.Contains("encryptedSecret", xml, StringComparison.Ordinal);
                Assert.DoesNotContain("masterKey", xml, StringComparison.Ordinal);
            }

            await using (var withoutKek = DataProtectionOver(connection, kek: null))
            {
                var protector = withoutKek.GetRequiredService<IDataProtectionProvider>().CreateProtector(KeyRing.Purpose);
                Assert.ThrowsAny<CryptographicException>(() => protector.Unprotect(protectedKey));
            }

            using var kek = X509Certificate2.CreateFromPemFile(kekFile);
            await using (var withKek = DataProtectionOver(connection, kek))
            {
                var protector = withKek.GetRequiredService<IDataProtectionProvider>().CreateProtector(KeyRing.Purpose);
                using var recovered = ECDsa.Create();
                recovered.ImportPkcs8PrivateKey(protector.Unprotect(protectedKey), out _);
                var q = recovered.ExportParameters(includePrivateParameters: false).Q;
                Assert.Equal(published.X, Base64UrlEncoder.Encode(q.X));
                Assert.Equal(published.Y, Base64UrlEncoder.Encode(q.Y));
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_key_encryption_key_never_comes_from_the_database()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        var noKey = new Dictionary<string, string?> { ["KeyEncryption:CertificatePath"] = null };
        if (TestDatabase.IsPostgres)
        {
            // Nothing configured: PostgreSQL has no file of its own to keep the key in, and the database must not.
            var settings = await TestDatabase.SettingsForAsync(dataDirectory);
            settings["KeyEncryption:CertificatePath"] = null;
            settings["urls"] = "https://127.0.0.1:0";
            settings["Storage:DataDirectory"] = dataDirectory;
            var failure = await Portcullis.Tests.Hosting.HostRun.StartFailsAsync(settings, "Test");
            var refused = Assert.IsType<StartupException>(failure);
            Assert.Contains("KeyEncryption:CertificatePath", refused.Message, StringComparison.Ordinal);
            Assert.Contains("portcullis keys new-kek", refused.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(dataDirectory, KeyEncryption.DefaultFile)));
            await TestDatabase.DropAsync(dataDirectory);
            return;
        }

        // SQLite: created on first start beside (never inside) the database, owner-only, and used again on restart.
        var server = await PortcullisServer.StartAsync(noKey, dataDirectory: dataDirectory);
        var published = await PublishedKeyAsync(server);
        var file = Path.Combine(dataDirectory, KeyEncryption.DefaultFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var pem = await File.ReadAllTextAsync(file);
        await server.StopKeepingDataAsync();

        await using var again = await PortcullisServer.StartAsync(noKey, dataDirectory: dataDirectory);
        Assert.Equal(pem, await File.ReadAllTextAsync(file));
        Assert.Equal(published.KeyId, (await PublishedKeyAsync(again)).KeyId);
    }

    [Fact]
    public async Task Keys_stored_in_the_clear_before_a_key_encryption_key_existed_are_encrypted_at_the_next_start()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        var settings = OwnKey(dataDirectory, out _);
        var server = await PortcullisServer.StartAsync(settings, dataDirectory: dataDirectory);
        var published = await PublishedKeyAsync(server);
        await server.StopKeepingDataAsync();
        var connection = LiveConnection(dataDirectory);

        // What an older Portcullis wrote: a Data Protection key with its master key in the clear.
        await using (var legacy = DataProtectionOver(connection, kek: null, readOnly: false))
        {
            var now = DateTimeOffset.UtcNow;
            legacy.GetRequiredService<IKeyManager>().CreateNewKey(now.AddMinutes(-1), now.AddDays(90));
        }

        Assert.Contains((await ReadStolenAsync(connection, published.KeyId!)).Rings, xml => xml.Contains("masterKey", StringComparison.Ordinal));

        await using var restarted = await PortcullisServer.StartAsync(settings, dataDirectory: dataDirectory);
        var rings = (await ReadStolenAsync(connection, published.KeyId!)).Rings;
        Assert.Equal(2, rings.Count);
        Assert.All(rings, xml => Assert.DoesNotContain("masterKey", xml, StringComparison.Ordinal));
        Assert.Contains("\"EventId\":2301", restarted.Logs.Text, StringComparison.Ordinal);
        Assert.Equal(published.KeyId, (await PublishedKeyAsync(restarted)).KeyId);
        using var http = restarted.CreateClient();
        var (_, _, tokens) = await http.NewUserAsync("kek");
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken));
    }

    [Fact]
    public async Task Rotating_the_key_encryption_key_re_encrypts_the_ring_so_the_old_key_opens_nothing_and_tokens_keep_working()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        var settings = OwnKey(dataDirectory, out var kekFile);
        var server = await PortcullisServer.StartAsync(settings, dataDirectory: dataDirectory);
        var published = await PublishedKeyAsync(server);
        string accessToken;
        using (var http = server.CreateClient())
        {
            accessToken = (await http.NewUserAsync("kek")).Tokens.AccessToken;
        }

        using var oldKek = X509Certificate2.CreateFromPemFile(kekFile);
        string newKekFile;
        if (TestDatabase.IsPostgres)
        {
            // A key from configuration cannot be replaced in place: the command says so and changes nothing.
            var refused = await server.RunCliAsync(null, "keys", "rotate-kek");
            Assert.Equal(Portcullis.Cli.CliApp.Usage, refused.ExitCode);
            Assert.Contains("--out", refused.Error, StringComparison.Ordinal);

            newKekFile = Path.Combine(dataDirectory, "rotated-kek.pem");
            var rotated = await server.RunCliAsync(null, "keys", "rotate-kek", "--out", newKekFile);
            Assert.True(rotated.ExitCode == 0, rotated.Error);
            settings["KeyEncryption:CertificatePath"] = newKekFile;
        }
        else
        {
            var rotated = await server.RunCliAsync(null, "keys", "rotate-kek");
            Assert.True(rotated.ExitCode == 0, rotated.Error);
            newKekFile = kekFile;
            Assert.False(File.Exists(kekFile + ".new"));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(newKekFile));
        using var newKek = X509Certificate2.CreateFromPemFile(newKekFile);
        Assert.NotEqual(oldKek.Thumbprint, newKek.Thumbprint);
        await server.StopKeepingDataAsync();

        var connection = LiveConnection(dataDirectory);
        var protectedKey = (await ReadStolenAsync(connection, published.KeyId!)).ProtectedKey;
        await using (var withOld = DataProtectionOver(connection, oldKek))
        {
            Assert.ThrowsAny<CryptographicException>(() =>
                withOld.GetRequiredService<IDataProtectionProvider>().CreateProtector(KeyRing.Purpose).Unprotect(protectedKey));
        }

        await using (var withNew = DataProtectionOver(connection, newKek))
        {
            Assert.NotEmpty(withNew.GetRequiredService<IDataProtectionProvider>().CreateProtector(KeyRing.Purpose).Unprotect(protectedKey));
        }

        // The signing keys did not change: the same key is published, and a token issued before still works.
        await using var restarted = await PortcullisServer.StartAsync(settings, dataDirectory: dataDirectory);
        Assert.Equal(published.KeyId, (await PublishedKeyAsync(restarted)).KeyId);
        using var after = restarted.CreateClient();
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(after, accessToken));
        var audit = await restarted.RunCliAsync(null, "audit", "verify");
        Assert.True(audit.ExitCode == 0, audit.Out + audit.Error);
        await using var scope = restarted.Services.CreateAsyncScope();
        var events = await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.AsNoTracking()
            .Where(e => e.Name == "kek_rotated").ToListAsync();
        Assert.Single(events);
        Assert.DoesNotContain("PRIVATE", events[0].Details ?? "", StringComparison.Ordinal);
    }

    private sealed record PublishedKey(string? KeyId, string X, string Y);

    private static async Task<PublishedKey> PublishedKeyAsync(PortcullisServer server)
    {
        using var http = server.CreateClient();
        var key = JsonDocument.Parse(await http.GetStringAsync(".well-known/jwks")).RootElement.GetProperty("keys")[0];
        return new(key.GetProperty("kid").GetString(), key.GetProperty("x").GetString()!, key.GetProperty("y").GetString()!);
    }

    /// <summary>SQLite: copies the database files (and nothing else) into <paramref name="scratch"/>. PostgreSQL: the database itself.</summary>
    private static string CopyDatabase(string dataDirectory, string scratch)
    {
        if (TestDatabase.IsPostgres)
        {
            return LiveConnection(dataDirectory);
        }

        foreach (var file in Directory.EnumerateFiles(dataDirectory, "portcullis.db*"))
        {
            File.Copy(file, Path.Combine(scratch, Path.GetFileName(file)));
        }

        return $"Data Source={Path.Combine(scratch, "portcullis.db")};Pooling=False";
    }

    private static string LiveConnection(string dataDirectory) =>
        TestDatabase.IsPostgres
            ? TestDatabase.ConnectionFor(dataDirectory, TestDatabase.AppConnection)!
            : $"Data Source={Path.Combine(dataDirectory, "portcullis.db")};Pooling=False";

    private static async Task<(List<string> Rings, byte[] ProtectedKey)> ReadStolenAsync(string connection, string keyId)
    {
        await using var services = DataProtectionOver(connection, kek: null);
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var rings = await db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml!).ToListAsync();
        var key = await db.SigningKeys.AsNoTracking().SingleAsync(k => k.KeyId == keyId);
        return (rings, Convert.FromBase64String(key.ProtectedKey));
    }

    /// <summary>Data Protection as anyone could set it up over the database, with or without the key-encryption key.</summary>
    private static ServiceProvider DataProtectionOver(string connection, X509Certificate2? kek, bool readOnly = true)
    {
        var services = new ServiceCollection().AddLogging();
        if (TestDatabase.IsPostgres)
        {
            services.AddDbContext<PortcullisDb, PostgresPortcullisDb>(db => db.UseNpgsql(connection).UseModel(Portcullis.Storage.CompiledModels.Postgres.PostgresPortcullisDbModel.Instance));
        }
        else
        {
            services.AddDbContext<PortcullisDb, SqlitePortcullisDb>(db => db.UseSqlite(connection).UseModel(Portcullis.Storage.CompiledModels.Sqlite.SqlitePortcullisDbModel.Instance));
        }

        var dataProtection = services.AddDataProtection().PersistKeysToDbContext<PortcullisDb>().SetApplicationName("portcullis");
        if (readOnly)
        {
            dataProtection.DisableAutomaticKeyGeneration();
        }

        if (kek is not null)
        {
            dataProtection.UnprotectKeysWithAnyCertificate(kek);
        }

        return services.BuildServiceProvider();
    }
}
