using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// Starts Portcullis exactly as <c>serve</c> does (CreateBuilder, BuildApp, InitializeAsync, StartAsync), for tests
/// that need the start itself: refusals, a configured certificate, a data directory that outlives one run.
/// Like every test server they run on the provider of the pass (SQLite, or the data directory's own PostgreSQL
/// database) with the suite's key-encryption key, unless the test's own settings say otherwise.
/// </summary>
internal static class HostRun
{
    public static Dictionary<string, string?> Settings(string dataDirectory, int port, params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["urls"] = $"https://127.0.0.1:{port}",
            ["Storage:DataDirectory"] = dataDirectory,
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>Starts and returns the running app; the caller stops it. The data directory is left alone.</summary>
    public static async Task<WebApplication> StartAsync(Dictionary<string, string?> settings, string environment)
    {
        settings = await ForThisPassAsync(settings);
        var app = PortcullisHost.BuildApp(PortcullisHost.CreateBuilder(settings, environment));
        try
        {
            await PortcullisHost.InitializeAsync(app.Services);
            await app.StartAsync();
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs the whole start (build included: Kestrel loads the certificate then) and returns what stopped it.</summary>
    public static async Task<Exception> StartFailsAsync(Dictionary<string, string?> settings, string environment = "Production")
    {
        settings = await ForThisPassAsync(settings);
        WebApplication? app = null;
        try
        {
            var failure = await Record.ExceptionAsync(async () =>
            {
                app = PortcullisHost.BuildApp(PortcullisHost.CreateBuilder(settings, environment));
                await PortcullisHost.InitializeAsync(app.Services);
                await app.StartAsync();
            });
            if (failure is null)
            {
                await app!.StopAsync();
                Assert.Fail("Portcullis started with a configuration it must refuse.");
            }

            return failure;
        }
        finally
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>The pass's storage settings and the suite's key-encryption key, overridden by <paramref name="settings"/>.</summary>
    private static async Task<Dictionary<string, string?>> ForThisPassAsync(Dictionary<string, string?> settings)
    {
        if (!settings.TryGetValue("Storage:DataDirectory", out var dataDirectory) || dataDirectory is null)
        {
            return settings;
        }

        var merged = await TestDatabase.SettingsForAsync(dataDirectory);
        foreach (var (key, value) in settings)
        {
            merged[key] = value;
        }

        return merged;
    }

    /// <summary>True when something accepts TCP connections on the port.</summary>
    public static async Task<bool> ListensAsync(int port)
    {
        using var tcp = new TcpClient();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The certificate the server presents in a real handshake (no validation: we only look).</summary>
    public static async Task<X509Certificate2> ServedCertificateAsync(int port)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, timeout.Token);
        return new X509Certificate2(ssl.RemoteCertificate!);
    }

    public static string NewDataDirectory() =>
        Path.Combine(Directory.CreateTempSubdirectory("portcullis-host-").FullName, "data");

    /// <summary>Drops the data directory's database (PostgreSQL) and deletes the directory.</summary>
    public static async Task DeleteQuietlyAsync(string dataDirectory)
    {
        await TestDatabase.DropAsync(dataDirectory);
        try
        {
            Directory.Delete(Path.GetDirectoryName(dataDirectory)!, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the file briefly; temp is cleaned eventually.
        }
    }

    public static int FreePort() => PortcullisServer.FreePort();
}

/// <summary>Certificates made for one test, written as PEM files into a temporary directory.</summary>
internal static class TestCertificates
{
    public static X509Certificate2 EcP256(DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return SelfSigned(new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256), notBefore, notAfter);
    }

    public static X509Certificate2 Rsa(int bits)
    {
        using var key = RSA.Create(bits);
        return SelfSigned(new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), null, null);
    }

    public static (string CertificatePath, string KeyPath) Write(X509Certificate2 certificate, string directory, AsymmetricAlgorithm? key = null)
    {
        Directory.CreateDirectory(directory);
        var certificatePath = Path.Combine(directory, $"cert-{Guid.NewGuid():N}.pem");
        var keyPath = Path.Combine(directory, $"key-{Guid.NewGuid():N}.pem");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        key ??= (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()!;
        using (key)
        {
            File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        return (certificatePath, keyPath);
    }

    private static X509Certificate2 SelfSigned(CertificateRequest request, DateTimeOffset? notBefore, DateTimeOffset? notAfter)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(notBefore ?? now.AddMinutes(-5), notAfter ?? now.AddDays(30));
    }
}
