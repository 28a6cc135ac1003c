namespace Portcullis.Hosting;

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
