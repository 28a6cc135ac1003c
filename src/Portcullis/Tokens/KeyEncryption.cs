using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Tokens;

/// <summary>
/// Where the key-encryption key comes from. It encrypts the Data Protection key ring, which protects the token
/// signing keys; both rings live in the database, so this key must not: a copy of the database alone yields no key.
/// First match wins: <see cref="CertificatePath"/>, <see cref="Pem"/>, the systemd credential, then (SQLite only) a
/// file created in the data directory on first start.
/// </summary>
public sealed class KeyEncryptionOptions
{
    public const string Section = "KeyEncryption";

    /// <summary>A PEM file with an RSA certificate and, unless <see cref="KeyPath"/> is set, its private key.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>, when it is kept in a file of its own.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The certificate and private key as PEM text, e.g. from <c>Portcullis__KeyEncryption__Pem</c>.</summary>
    public string? Pem { get; set; }

    /// <summary>
    /// The name of a systemd credential (<c>LoadCredential=</c>/<c>LoadCredentialEncrypted=</c>) holding the PEM, read
    /// from <c>$CREDENTIALS_DIRECTORY</c> when systemd sets it. Default <c>portcullis-kek</c>.
    /// </summary>
    public string CredentialName { get; set; } = "portcullis-kek";
}

/// <summary>
/// The key-encryption key (an RSA certificate, so the framework's own <c>ProtectKeysWithCertificate</c> does the
/// encryption), resolved once when the host is built; and the two jobs that rewrite the Data Protection key ring's
/// stored XML: encrypting keys stored in the clear before this key existed, and re-encrypting every key under a new
/// key-encryption key (<c>portcullis keys rotate-kek</c>). Only the wrapping changes: the Data Protection keys
/// themselves, and everything they protect, stay as they are.
/// </summary>
public sealed class KeyEncryption
{
    public const string DefaultFile = "key-encryption.pem";
    public const string CredentialsDirectoryVariable = "CREDENTIALS_DIRECTORY";

    public enum Origin { CertificatePath, Pem, SystemdCredential, DataDirectoryFile }

    /// <summary>The key in use; <paramref name="File"/> is null when it came from configuration text.</summary>
    public sealed record Key(X509Certificate2 Certificate, Origin Origin, string? File)
    {
        public string Describe() => Origin switch
        {
            Origin.CertificatePath => $"KeyEncryption:CertificatePath ({File})",
            Origin.Pem => "KeyEncryption:Pem",
            Origin.SystemdCredential => $"the systemd credential {File}",
            _ => $"{File}",
        };
    }

    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";
    private static readonly XName EncryptedSecret = DataProtection + "encryptedSecret";
    private static readonly XName RequiresEncryption = DataProtection + "requiresEncryption";

    private readonly Key? _key;
    private readonly string? _problem;
    private bool _pendingWrite;

    private KeyEncryption(Key? key, string? problem, bool pendingWrite)
    {
        _key = key;
        _problem = problem;
        _pendingWrite = pendingWrite;
    }

    /// <summary>
    /// Resolves the key when the host is built (Data Protection takes the certificate itself, not a callback). A
    /// problem is kept, not thrown, so commands that never read the key ring (<c>migrate</c>, <c>doctor</c>) still run;
    /// <see cref="EnsureReadyAsync"/> throws it. The default file is only generated here and written by
    /// <see cref="EnsureReadyAsync"/>, so a command that never starts the server leaves nothing behind.
    /// </summary>
    public static KeyEncryption Resolve(KeyEncryptionOptions options, StorageOptions storage)
    {
        try
        {
            if (!string.IsNullOrWhiteSpace(options.KeyPath) && string.IsNullOrWhiteSpace(options.CertificatePath))
            {
                throw new StartupException("KeyEncryption:KeyPath is set without KeyEncryption:CertificatePath: set both, or put the key in the certificate's PEM file.");
            }

            if (!string.IsNullOrWhiteSpace(options.CertificatePath) && !string.IsNullOrWhiteSpace(options.Pem))
            {
                throw new StartupException("Set either KeyEncryption:CertificatePath or KeyEncryption:Pem, not both.");
            }

            return Locate(options, storage) switch
            {
                (Origin.CertificatePath, var file) => new(new Key(LoadFile(file!, options.KeyPath, "KeyEncryption:CertificatePath"), Origin.CertificatePath, file), null, false),
                (Origin.Pem, _) => new(new Key(Parse(options.Pem!, "KeyEncryption:Pem"), Origin.Pem, null), null, false),
                (Origin.SystemdCredential, var file) => new(new Key(LoadFile(file!, null, $"the systemd credential '{options.CredentialName}'"), Origin.SystemdCredential, file), null, false),
                (Origin.DataDirectoryFile, var file) when File.Exists(file) => new(new Key(LoadFile(file!, null, file!), Origin.DataDirectoryFile, file), null, false),
                (Origin.DataDirectoryFile, var file) => new(new Key(Create(), Origin.DataDirectoryFile, file), null, true),
                _ => throw new StartupException(
                    "PostgreSQL needs a key-encryption key from configuration, the same on every instance and kept outside the database: "
                    + "create one with 'portcullis keys new-kek --out /etc/portcullis/kek.pem' and set KeyEncryption:CertificatePath to it "
                    + "(or put the PEM in KeyEncryption:Pem, or in the systemd credential 'portcullis-kek'). See docs/deployment.md."),
            };
        }
        catch (StartupException ex)
        {
            return new(null, ex.Message, false);
        }
    }

    /// <summary>The key, when one could be resolved; null otherwise (then <see cref="EnsureReadyAsync"/> says why).</summary>
    public Key? Current => _key;

    /// <summary>
    /// Before the key ring is first read: throws the resolution problem, if any; writes a newly generated default file
    /// (owner-only); then encrypts Data Protection keys that were stored in the clear. Returns how many were.
    /// </summary>
    public async Task<int> EnsureReadyAsync(PortcullisDb db, CancellationToken ct)
    {
        if (_key is null)
        {
            throw new StartupException(_problem!);
        }

        if (_pendingWrite)
        {
            PortcullisHost.EnsurePrivateDirectory(Path.GetDirectoryName(_key.File)!);
            try
            {
                Write(_key.File!, _key.Certificate);
            }
            catch (IOException) when (File.Exists(_key.File))
            {
                throw new StartupException($"{_key.File} was created by another process while this one started: start again.");
            }

            _pendingWrite = false;
        }

        return await EncryptClearKeysAsync(db, ct);
    }

    /// <summary>Where the key would come from, without reading or creating anything (for <c>doctor</c>); null when there is none.</summary>
    public static (Origin Origin, string? File)? Locate(KeyEncryptionOptions options, StorageOptions storage)
    {
        if (!string.IsNullOrWhiteSpace(options.CertificatePath))
        {
            return (Origin.CertificatePath, options.CertificatePath);
        }

        if (!string.IsNullOrWhiteSpace(options.Pem))
        {
            return (Origin.Pem, null);
        }

        if (CredentialFile(options) is { } credential)
        {
            return (Origin.SystemdCredential, credential);
        }

        return storage.IsPostgres ? null : (Origin.DataDirectoryFile, DefaultPath(storage));
    }

    public static string DefaultPath(StorageOptions storage) => Path.Combine(Path.GetFullPath(storage.DataDirectory), DefaultFile);

    private static string? CredentialFile(KeyEncryptionOptions options) =>
        Environment.GetEnvironmentVariable(CredentialsDirectoryVariable) is { Length: > 0 } directory
        && !string.IsNullOrWhiteSpace(options.CredentialName)
        && File.Exists(Path.Combine(directory, options.CredentialName))
            ? Path.Combine(directory, options.CredentialName)
            : null;

    private static X509Certificate2 LoadFile(string path, string? keyPath, string name)
    {
        try
        {
            return Checked(X509Certificate2.CreateFromPemFile(path, keyPath), name);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new StartupException($"The key-encryption key from {name} cannot be read: {ex.Message} It must be a PEM file with an RSA certificate and its private key.");
        }
    }

    private static X509Certificate2 Parse(string pem, string name)
    {
        try
        {
            return Checked(X509Certificate2.CreateFromPem(pem, pem), name);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new StartupException($"The key-encryption key from {name} cannot be read: it must be PEM text with an RSA certificate and its private key.");
        }
    }

    private static X509Certificate2 Checked(X509Certificate2 certificate, string name)
    {
        // XML Encryption wraps keys with RSA only; under 3072 bits is below the strength of the keys it protects.
        using var rsa = certificate.GetRSAPrivateKey();
        if (rsa is null || rsa.KeySize < 3072)
        {
            throw new StartupException($"The key-encryption key from {name} must be an RSA key of at least 3072 bits with its private key.");
        }

        return certificate;
    }

    /// <summary>A new key-encryption key: a self-signed RSA-3072 certificate, used only for wrapping keys.</summary>
    public static X509Certificate2 Create()
    {
        using var rsa = RSA.Create(3072);
        var request = new CertificateRequest("CN=Portcullis key-encryption key", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, critical: true));
        var now = DateTimeOffset.UtcNow;
        // XML Encryption does not check validity dates: the long life only keeps tools that do from refusing it.
        return request.CreateSelfSigned(now.AddDays(-1), now.AddYears(100));
    }

    /// <summary>Writes <paramref name="certificate"/> and its private key as one PEM file, owner-only, never over an existing file.</summary>
    public static X509Certificate2 Write(string path, X509Certificate2 certificate)
    {
        using var rsa = certificate.GetRSAPrivateKey()!;
        var pem = certificate.ExportCertificatePem() + "\n" + rsa.ExportPkcs8PrivateKeyPem() + "\n";
        using (var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(pem);
        }

        return certificate;
    }

    /// <summary>
    /// Encrypts, in place, every Data Protection key stored in the clear (written before a key-encryption key existed).
    /// Returns how many were encrypted.
    /// </summary>
    private async Task<int> EncryptClearKeysAsync(PortcullisDb db, CancellationToken ct)
    {
        var rows = await db.DataProtectionKeys.ToListAsync(ct);
        var encryptor = new CertificateXmlEncryptor(_key!.Certificate, NullLoggerFactory.Instance);
        var changed = 0;
        foreach (var row in rows.Where(r => r.Xml is not null))
        {
            var xml = XElement.Parse(row.Xml!);
            if (xml.DescendantsAndSelf().Any(IsClear))
            {
                row.Xml = Encrypt(xml, encryptor).ToString(SaveOptions.DisableFormatting);
                changed++;
            }
        }

        if (changed > 0)
        {
            await db.SaveChangesAsync(ct);
        }

        return changed;
    }

    /// <summary>
    /// Re-encrypts every Data Protection key under <paramref name="next"/>: each secret is decrypted with the current
    /// key-encryption key and encrypted with the new one. Saved by the caller's <c>SaveChanges</c>, in its transaction.
    /// </summary>
    /// <param name="services">The host's services: their Data Protection set-up knows the current key, which decrypts.</param>
    public static async Task<int> ReencryptAsync(IServiceProvider services, PortcullisDb db, X509Certificate2 next, CancellationToken ct)
    {
        var decryptor = new EncryptedXmlDecryptor(services);
        var encryptor = new CertificateXmlEncryptor(next, NullLoggerFactory.Instance);
        var rows = await db.DataProtectionKeys.ToListAsync(ct);
        foreach (var row in rows.Where(r => r.Xml is not null))
        {
            var xml = new XDocument(XElement.Parse(row.Xml!));
            foreach (var secret in xml.Descendants(EncryptedSecret).ToList())
            {
                secret.ReplaceWith(decryptor.Decrypt(secret.Elements().Single()));
            }

            row.Xml = Encrypt(xml.Root!, encryptor).ToString(SaveOptions.DisableFormatting);
        }

        return rows.Count;
    }

    /// <summary>True for an element Data Protection marked for encryption that is not inside an encrypted secret.</summary>
    private static bool IsClear(XElement element) =>
        (string?)element.Attribute(RequiresEncryption) == "true" && !element.Ancestors(EncryptedSecret).Any();

    /// <summary>
    /// Replaces each element marked for encryption with <c>&lt;encryptedSecret decryptorType="…"&gt;</c> holding its
    /// encrypted form: the shape Data Protection itself writes and reads back when it loads the ring.
    /// </summary>
    private static XElement Encrypt(XElement key, CertificateXmlEncryptor encryptor)
    {
        var document = new XDocument(new XElement(key));
        foreach (var element in document.Descendants().Where(IsClear).ToList())
        {
            var encrypted = encryptor.Encrypt(new XElement(element));
            element.ReplaceWith(new XElement(EncryptedSecret,
                new XAttribute("decryptorType", encrypted.DecryptorType.AssemblyQualifiedName!),
                encrypted.EncryptedElement));
        }

        return document.Root!;
    }
}
