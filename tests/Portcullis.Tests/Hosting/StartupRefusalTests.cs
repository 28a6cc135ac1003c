using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// C01: outside Development, configuration that would make transport or tokens unsafe stops start-up with a message
/// naming the setting to fix, and nothing ever listens.
/// </summary>
public sealed class StartupRefusalTests : IAsyncDisposable
{
    private readonly string _dataDirectory = HostRun.NewDataDirectory();
    private readonly string _secrets = Directory.CreateTempSubdirectory("portcullis-certs-").FullName;
    private readonly int _port = HostRun.FreePort();

    public async ValueTask DisposeAsync()
    {
        await HostRun.DeleteQuietlyAsync(_dataDirectory);
        Directory.Delete(_secrets, recursive: true);
    }

    [Fact]
    public async Task C01_only_an_http_url_stops_start_up_and_names_urls()
    {
        var settings = HostRun.Settings(_dataDirectory, _port);
        settings["urls"] = $"http://127.0.0.1:{_port}";

        var failure = await HostRun.StartFailsAsync(settings);

        var startup = Assert.IsType<StartupException>(failure);
        Assert.Contains("--urls", startup.Message, StringComparison.Ordinal);
        Assert.Contains("https://", startup.Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_an_http_issuer_stops_start_up_and_names_tokens_issuer()
    {
        var settings = HostRun.Settings(_dataDirectory, _port, ("Tokens:Issuer", $"http://127.0.0.1:{_port}/"));

        var failure = await HostRun.StartFailsAsync(settings);

        var startup = Assert.IsType<StartupException>(failure);
        Assert.Contains("Tokens:Issuer", startup.Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_a_certificate_and_a_key_that_do_not_match_stop_start_up()
    {
        using var certificate = TestCertificates.EcP256();
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets, ECDsa.Create(ECCurve.NamedCurves.nistP256));

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, keyPath));

        AssertNamesTlsSettings(failure);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_a_missing_certificate_file_stops_start_up()
    {
        using var certificate = TestCertificates.EcP256();
        var (_, keyPath) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(Tls(Path.Combine(_secrets, "no-such-cert.pem"), keyPath));

        AssertNamesTlsSettings(failure);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_an_unreadable_key_path_stops_start_up()
    {
        // Tests run as root here, so a mode-000 file would still be readable: a directory is what cannot be read.
        using var certificate = TestCertificates.EcP256();
        var (certificatePath, _) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, _secrets));

        AssertNamesTlsSettings(failure);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_a_certificate_file_that_is_not_pem_stops_start_up()
    {
        using var certificate = TestCertificates.EcP256();
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);
        await File.WriteAllTextAsync(certificatePath, "this is not a certificate");

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, keyPath));

        AssertNamesTlsSettings(failure);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_only_one_of_certificate_path_and_key_path_stops_start_up()
    {
        using var certificate = TestCertificates.EcP256();
        var (certificatePath, _) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(HostRun.Settings(_dataDirectory, _port, ("Tls:CertificatePath", certificatePath)));

        AssertNamesTlsSettings(failure);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Theory]
    [InlineData(1024)]
    [InlineData(2048)] // about 112-bit security: below TLS-03's 128 bits
    public async Task C01_a_weak_rsa_certificate_stops_start_up(int bits)
    {
        using var certificate = TestCertificates.Rsa(bits);
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, keyPath));

        var startup = Assert.IsType<StartupException>(failure);
        Assert.Contains("too weak", startup.Message, StringComparison.Ordinal);
        Assert.Contains("Tls:CertificatePath", startup.Message, StringComparison.Ordinal);
        Assert.Contains("3072", startup.Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_an_expired_certificate_stops_start_up()
    {
        var now = DateTimeOffset.UtcNow;
        using var certificate = TestCertificates.EcP256(now.AddDays(-30), now.AddDays(-1));
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, keyPath));

        var startup = Assert.IsType<StartupException>(failure);
        Assert.Contains("Tls:CertificatePath", startup.Message, StringComparison.Ordinal);
        Assert.Contains("expired", startup.Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_a_certificate_not_yet_valid_stops_start_up()
    {
        var now = DateTimeOffset.UtcNow;
        using var certificate = TestCertificates.EcP256(now.AddDays(2), now.AddDays(30));
        var (certificatePath, keyPath) = TestCertificates.Write(certificate, _secrets);

        var failure = await HostRun.StartFailsAsync(Tls(certificatePath, keyPath));

        Assert.Contains("Tls:CertificatePath", Assert.IsType<StartupException>(failure).Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_invalid_token_settings_stop_start_up_and_every_problem_is_listed()
    {
        var settings = HostRun.Settings(_dataDirectory, _port,
            ("Tokens:AccessTokenLifetime", "02:00:00"),
            ("Tokens:ClockSkew", "00:05:00"));

        var failure = await HostRun.StartFailsAsync(settings);

        var validation = Assert.IsType<OptionsValidationException>(failure);
        Assert.Contains(validation.Failures, f => f.Contains("Tokens:AccessTokenLifetime", StringComparison.Ordinal));
        Assert.Contains(validation.Failures, f => f.Contains("Tokens:ClockSkew", StringComparison.Ordinal));
        Assert.Contains("Tokens:AccessTokenLifetime", validation.Message, StringComparison.Ordinal);
        Assert.Contains("Tokens:ClockSkew", validation.Message, StringComparison.Ordinal);
        Assert.False(await HostRun.ListensAsync(_port));
    }

    [Fact]
    public async Task C01_the_same_http_only_binding_is_allowed_in_development()
    {
        // The control for the refusals above: the check is about the environment, not a broken start path.
        var settings = HostRun.Settings(_dataDirectory, _port);
        settings["urls"] = $"http://127.0.0.1:{_port}";

        var app = await HostRun.StartAsync(settings, "Development");
        await using (app)
        {
            Assert.True(await HostRun.ListensAsync(_port));
            await app.StopAsync();
        }
    }

    private Dictionary<string, string?> Tls(string certificatePath, string keyPath) =>
        HostRun.Settings(_dataDirectory, _port, ("Tls:CertificatePath", certificatePath), ("Tls:KeyPath", keyPath));

    private static void AssertNamesTlsSettings(Exception failure)
    {
        var startup = Assert.IsType<StartupException>(failure);
        Assert.Contains("Tls:CertificatePath", startup.Message, StringComparison.Ordinal);
        Assert.Contains("Tls:KeyPath", startup.Message, StringComparison.Ordinal);
    }
}
