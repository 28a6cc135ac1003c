using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Hosting;

/// <summary>
/// The server certificate: the configured PEM pair, or a self-signed P-256 development certificate kept under the
/// data directory (created on first run, renewed when it is about to expire).
/// </summary>
public static class Certificates
{
    public const string DevCertFile = "dev-cert.pem";
    public const string DevKeyFile = "dev-key.pem";

    public sealed record Loaded(X509Certificate2 Certificate, bool SelfSigned, string Path, string Sha256);

    public static Loaded Load(TlsOptions tls, string dataDirectory, TimeProvider time)
    {
        if (!string.IsNullOrWhiteSpace(tls.CertificatePath) || !string.IsNullOrWhiteSpace(tls.KeyPath))
        {
            var certificate = LoadConfigured(tls, time);
            return new Loaded(certificate, false, tls.CertificatePath!, Fingerprint(certificate));
        }

        var certPath = Path.Combine(dataDirectory, DevCertFile);
        var keyPath = Path.Combine(dataDirectory, DevKeyFile);
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            var existing = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            if (existing.NotAfter.ToUniversalTime() > time.GetUtcNow().UtcDateTime.AddDays(7))
            {
                return new Loaded(existing, true, certPath, Fingerprint(existing));
            }
        }

        var created = CreateSelfSigned(time);
        File.WriteAllText(certPath, created.ExportCertificatePem());
        using (var key = created.GetECDsaPrivateKey()!)
        {
            WritePrivate(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        return new Loaded(created, true, certPath, Fingerprint(created));
    }

    /// <summary>Loads a configured PEM pair, refusing one that cannot protect traffic: every reason is stated.</summary>
    private static X509Certificate2 LoadConfigured(TlsOptions tls, TimeProvider time)
    {
        if (string.IsNullOrWhiteSpace(tls.CertificatePath) || string.IsNullOrWhiteSpace(tls.KeyPath))
        {
            throw new StartupException("Set both Tls:CertificatePath and Tls:KeyPath (PEM files), or neither for a self-signed development certificate.");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(tls.CertificatePath, tls.KeyPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new StartupException($"Tls:CertificatePath / Tls:KeyPath cannot be used: they must be readable PEM files and the key must match the certificate ({ex.GetType().Name}).");
        }

        var now = time.GetUtcNow().UtcDateTime;
        if (certificate.NotAfter.ToUniversalTime() <= now || certificate.NotBefore.ToUniversalTime() > now)
        {
            throw new StartupException("The TLS certificate in Tls:CertificatePath is expired or not yet valid.");
        }

        // TLS-03: at least 128-bit security, i.e. P-256 or RSA-3072 (RSA-2048 is only about 112 bits).
        var strong = certificate.GetECDsaPublicKey() is { } ec ? ec.KeySize >= 256
            : certificate.GetRSAPublicKey() is { } rsa && rsa.KeySize >= 3072;
        if (!strong)
        {
            throw new StartupException("The TLS certificate key is too weak: use ECDSA P-256 or stronger, or RSA of at least 3072 bits (Tls:CertificatePath).");
        }

        return certificate;
    }

    private static X509Certificate2 CreateSelfSigned(TimeProvider time)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Portcullis development certificate", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = time.GetUtcNow();
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(365));
    }

    public static string Fingerprint(X509Certificate2 certificate) =>
        Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256));

    /// <summary>Writes a secret file readable by its owner only.</summary>
    public static void WritePrivate(string path, string contents)
    {
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        using var writer = new StreamWriter(stream);
        writer.Write(contents);
    }
}

/// <summary>Configuration that must stop start-up; the message says what to set.</summary>
public sealed class StartupException(string message) : Exception(message);
