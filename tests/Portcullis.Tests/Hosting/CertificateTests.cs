using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Net;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Which certificate is served, and how the development certificate and the state directory are kept.</summary>
public sealed class CertificateTests : IAsyncDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerAll = OwnerReadWrite | UnixFileMode.UserExecute;

    private readonly string _dataDirectory = HostRun.NewDataDirectory();
    private readonly string _secrets = Directory.CreateTempSubdirectory("portcullis-certs-").FullName;

    public async ValueTask DisposeAsync()
    {
        await HostRun.DeleteQuietlyAsync(_dataDirectory);
        Directory.Delete(_secrets, recursive: true);
    }

    [Fact]
    public async Task C01_a_configured_p256_pem_pair_is_the_certificate_served_in_production()
    {
        using var certificate = TestCertificates.EcP256();
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);
        var port = HostRun.FreePort();
        var settings = HostRun.Settings(_dataDirectory, port, ("Tls:CertificatePath", certificatePath), ("Tls:KeyPath", keyPath));

        var app = await HostRun.StartAsync(settings, "Production");
        await using (app)
        {
            using var served = await HostRun.ServedCertificateAsync(port);
            Assert.Equal(certificate.GetCertHashString(HashAlgorithmName.SHA256), served.GetCertHashString(HashAlgorithmName.SHA256));
            await app.StopAsync();
        }

        // A configured certificate means no development certificate is made on the side.
        Assert.False(File.Exists(Path.Combine(_dataDirectory, Certificates.DevKeyFile)));
        Assert.False(File.Exists(Path.Combine(_dataDirectory, Certificates.DevCertFile)));
    }

    [Fact]
    public async Task C01_a_configured_rsa_3072_pem_pair_is_accepted()
    {
        // The control for the weak-RSA refusals: the size limit, not RSA itself, is what they hit.
        using var certificate = TestCertificates.Rsa(3072);
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);
        var port = HostRun.FreePort();
        var settings = HostRun.Settings(_dataDirectory, port, ("Tls:CertificatePath", certificatePath), ("Tls:KeyPath", keyPath));

        var app = await HostRun.StartAsync(settings, "Production");
        await using (app)
        {
            using var served = await HostRun.ServedCertificateAsync(port);
            Assert.Equal(certificate.GetCertHashString(HashAlgorithmName.SHA256), served.GetCertHashString(HashAlgorithmName.SHA256));
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task The_development_certificate_is_created_on_first_run_as_p256_for_127_0_0_1_with_an_owner_only_key()
    {
        Assert.False(Directory.Exists(_dataDirectory));
        var port = HostRun.FreePort();

        var app = await HostRun.StartAsync(HostRun.Settings(_dataDirectory, port), "Test");
        await using (app)
        {
            using var served = await HostRun.ServedCertificateAsync(port);
            await app.StopAsync();

            var keyPath = Path.Combine(_dataDirectory, Certificates.DevKeyFile);
            var certificatePath = Path.Combine(_dataDirectory, Certificates.DevCertFile);
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(keyPath));
            Assert.Contains("PRIVATE KEY", await File.ReadAllTextAsync(keyPath), StringComparison.Ordinal);
            Assert.DoesNotContain("PRIVATE KEY", await File.ReadAllTextAsync(certificatePath), StringComparison.Ordinal);

            using var onDisk = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(certificatePath));
            Assert.Equal(onDisk.GetCertHashString(HashAlgorithmName.SHA256), served.GetCertHashString(HashAlgorithmName.SHA256));
            using var publicKey = served.GetECDsaPublicKey();
            Assert.NotNull(publicKey);
            Assert.Equal(256, publicKey.KeySize);
            Assert.Equal("1.2.840.10045.3.1.7", publicKey.ExportParameters(false).Curve.Oid.Value); // nistP256
            Assert.Null(served.GetRSAPublicKey());
            var san = served.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains(IPAddress.Loopback, san.EnumerateIPAddresses());
        }
    }

    [Fact]
    public async Task A_second_start_reuses_the_development_certificate()
    {
        var first = await ServedThumbprintAsync();
        var keyBefore = await File.ReadAllTextAsync(Path.Combine(_dataDirectory, Certificates.DevKeyFile));

        var second = await ServedThumbprintAsync();

        Assert.Equal(first, second);
        Assert.Equal(keyBefore, await File.ReadAllTextAsync(Path.Combine(_dataDirectory, Certificates.DevKeyFile)));
    }

    [Fact]
    public async Task The_data_directory_is_owner_only_and_the_database_files_are_owner_read_write()
    {
        var port = HostRun.FreePort();

        var app = await HostRun.StartAsync(HostRun.Settings(_dataDirectory, port), "Test");
        await using (app)
        {
            using (var http = new HttpClient(new SocketsHttpHandler
            {
                SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
            }) { BaseAddress = new Uri($"https://127.0.0.1:{port}/") })
            {
                // A write, so the WAL and shared-memory files exist too.
                using var response = await http.RegisterAsync(ClientFlows.UniqueName("perm"));
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }

            Assert.Equal(OwnerAll, File.GetUnixFileMode(_dataDirectory));
            if (!TestDatabase.IsPostgres) // on PostgreSQL the database files are the cluster's, not in the data directory
            {
                var database = Path.Combine(_dataDirectory, "portcullis.db");
                Assert.True(File.Exists(database));
                foreach (var file in new[] { database, database + "-wal", database + "-shm" }.Where(File.Exists))
                {
                    Assert.True(OwnerReadWrite == File.GetUnixFileMode(file), $"{Path.GetFileName(file)} is {File.GetUnixFileMode(file)}");
                }
            }

            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(Path.Combine(_dataDirectory, Certificates.DevKeyFile)));
            await app.StopAsync();
        }
    }

    private async Task<string> ServedThumbprintAsync()
    {
        var port = HostRun.FreePort();
        var app = await HostRun.StartAsync(HostRun.Settings(_dataDirectory, port), "Test");
        await using (app)
        {
            using var served = await HostRun.ServedCertificateAsync(port);
            await app.StopAsync();
            return served.GetCertHashString(HashAlgorithmName.SHA256);
        }
    }
}
