using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.RegularExpressions;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>T01: the real Kestrel speaks TLS 1.2 and 1.3 with ECDHE and AEAD suites only.</summary>
public sealed partial class TlsProtocolTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly TlsCipherSuite[] Aead =
    [
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];

    private readonly PortcullisServer _server = fixture.Server;

    [Fact]
    public async Task T01_tls_1_3_handshake_succeeds_with_an_aead_suite()
    {
        await using var ssl = await HandshakeAsync(SslProtocols.Tls13);

        Assert.Equal(SslProtocols.Tls13, ssl.SslProtocol);
        Assert.Contains(ssl.NegotiatedCipherSuite, Aead);
    }

    [Fact]
    public async Task T01_tls_1_2_handshake_succeeds_with_an_ecdhe_aead_suite()
    {
        await using var ssl = await HandshakeAsync(SslProtocols.Tls12);

        Assert.Equal(SslProtocols.Tls12, ssl.SslProtocol);
        Assert.Contains(ssl.NegotiatedCipherSuite, Aead);
        Assert.StartsWith("TLS_ECDHE_", ssl.NegotiatedCipherSuite.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task T01_a_client_offering_both_versions_gets_tls_1_3()
    {
        await using var ssl = await HandshakeAsync(SslProtocols.Tls12 | SslProtocols.Tls13);

        Assert.Equal(SslProtocols.Tls13, ssl.SslProtocol);
    }

    [Fact]
    public async Task T01_tls_1_2_offering_only_an_ecdhe_gcm_suite_succeeds()
    {
        // .NET's own client, beside OpenSSL's (the control for the CBC refusals below), agrees on an AEAD suite.
        await using var ssl = await HandshakeAsync(SslProtocols.Tls12, [TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);

        Assert.Equal(TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ssl.NegotiatedCipherSuite);
    }

    [Theory]
    [InlineData("-tls1", "TLS 1.0")]
    [InlineData("-tls1_1", "TLS 1.1")]
    public async Task T01_the_server_itself_refuses_tls_1_0_and_1_1_offered_by_openssl(string version, string name)
    {
        // SECLEVEL=0 lets the local OpenSSL really offer the old versions (Debian's default level 2 refuses on the
        // client side, which is why .NET's SslStream cannot test this). -msg shows each record: the ClientHello going
        // out for that version, and the server's fatal alert coming back. A client-side refusal sends no ClientHello
        // and receives no alert.
        var (exit, output) = await OpenSslAsync($"s_client -connect 127.0.0.1:{_server.BaseAddress.Port} {version} -cipher DEFAULT:@SECLEVEL=0 -servername localhost -msg");

        Assert.True(exit != 0, output);
        Assert.Contains($">>> {name}, Handshake", output, StringComparison.Ordinal);
        Assert.Contains("ClientHello", output, StringComparison.Ordinal);
        Assert.Matches("<<< TLS 1\\.[0-3], Alert \\[length 0002\\], fatal protocol_version", output);
        Assert.Contains("alert protocol version", output, StringComparison.Ordinal);
        Assert.DoesNotContain("ServerHello", output, StringComparison.Ordinal);
        Assert.DoesNotContain("BEGIN CERTIFICATE", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ECDHE-ECDSA-AES128-SHA256")]
    [InlineData("ECDHE-ECDSA-AES256-SHA384")]
    [InlineData("ECDHE-ECDSA-AES128-SHA")]
    [InlineData("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA")]
    [InlineData("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:AES128-SHA")]
    public async Task T01_the_server_itself_refuses_tls_1_2_offering_only_cbc_suites(string cbc)
    {
        // As for TLS 1.0/1.1 above, the proof is on the wire, not a client exception: -trace decodes each record, so
        // the output shows the TLS 1.2 ClientHello going out with exactly the CBC suites asked for (and no other), and
        // the server's fatal handshake_failure alert coming back instead of a ServerHello.
        var (exit, output) = await OpenSslAsync($"s_client -connect 127.0.0.1:{_server.BaseAddress.Port} -tls1_2 -cipher {cbc}:@SECLEVEL=0 -servername localhost -trace");

        Assert.True(exit != 0, output);
        Assert.Contains("ClientHello", output, StringComparison.Ordinal);
        Assert.Contains("client_version=0x303 (TLS 1.2)", output, StringComparison.Ordinal);
        var offered = OfferedSuites().Matches(output).Select(m => m.Groups[1].Value).Where(s => s != "TLS_EMPTY_RENEGOTIATION_INFO_SCSV").ToList();
        Assert.Equal(cbc.Split(':').Length, offered.Count);
        Assert.All(offered, suite => Assert.Contains("_CBC_", suite, StringComparison.Ordinal));
        Assert.Contains("Content Type = Alert (21)", output, StringComparison.Ordinal);
        Assert.Contains("Level=fatal(2), description=handshake failure(40)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("ServerHello", output, StringComparison.Ordinal);
        Assert.DoesNotContain("BEGIN CERTIFICATE", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task T01_openssl_tls_1_2_offering_only_an_ecdhe_gcm_suite_succeeds()
    {
        // The control for the CBC refusals above: the same client, options and -cipher restriction, with an AEAD suite.
        var (exit, output) = await OpenSslAsync($"s_client -connect 127.0.0.1:{_server.BaseAddress.Port} -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0 -servername localhost -trace");

        Assert.True(exit == 0, output);
        Assert.Contains("ServerHello", output, StringComparison.Ordinal);
        Assert.Contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", output, StringComparison.Ordinal);
    }

    /// <summary>A cipher suite as <c>openssl s_client -trace</c> prints it: <c>{0xC0, 0x09} TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA</c>.</summary>
    [GeneratedRegex(@"\{0x[0-9A-F]{2}, 0x[0-9A-F]{2}\} (TLS_\w+)")]
    private static partial Regex OfferedSuites();

    [Fact]
    public async Task T01_tls_1_2_has_no_compression_and_only_secure_renegotiation()
    {
        var (exit, output) = await OpenSslAsync($"s_client -connect 127.0.0.1:{_server.BaseAddress.Port} -tls1_2");

        Assert.True(exit == 0, output);
        Assert.Contains("Compression: NONE", output, StringComparison.Ordinal);
        Assert.Contains("Secure Renegotiation IS supported", output, StringComparison.Ordinal);
    }

    private async Task<SslStream> HandshakeAsync(SslProtocols protocols, TlsCipherSuite[]? suites = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", _server.BaseAddress.Port, timeout.Token);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                EnabledSslProtocols = protocols,
                CipherSuitesPolicy = suites is null ? null : new CipherSuitesPolicy(suites),
                RemoteCertificateValidationCallback = (_, cert, _, _) =>
                    cert is not null && cert.GetCertHashString() == _server.Certificate.GetCertHashString(),
            }, timeout.Token);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync();
            throw;
        }
    }

    private static async Task<(int Exit, string Output)> OpenSslAsync(string arguments)
    {
        var start = new ProcessStartInfo("openssl", arguments)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            // Never a skip: without openssl the server's own refusal of TLS 1.0/1.1 goes unproven.
            throw new InvalidOperationException("The openssl command is required (scripts/test.sh installs the Debian 'openssl' package).", ex);
        }

        using (process)
        {
            process.StandardInput.Close(); // s_client exits once stdin ends
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
            return (process.ExitCode, new StringBuilder().Append(await stdout).Append(await stderr).ToString());
        }
    }
}
