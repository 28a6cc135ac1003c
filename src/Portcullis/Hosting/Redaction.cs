using System.Security.Cryptography;
using Microsoft.Extensions.Compliance.Classification;
using Microsoft.Extensions.Compliance.Redaction;

namespace Portcullis.Hosting;

/// <summary>
/// The data classifications of Portcullis. Every value that leaves the process in a log line or an audit row and
/// is not plainly public carries one of these, and the redactor registered for it decides what is written:
/// <list type="bullet">
/// <item><see cref="Secret"/> — passwords, access / refresh / ID tokens, client secrets, API keys, the
/// <c>Authorization</c>, <c>Cookie</c> and <c>Set-Cookie</c> headers: erased, nothing of the value is written.</item>
/// <item><see cref="Personal"/> — usernames, e-mail addresses, and anything typed into a username field (which may be
/// a mistyped password): written as a keyed HMAC-SHA256, so lines about the same name correlate, but the name cannot
/// be read back or confirmed by hashing guesses without the key.</item>
/// <item><see cref="Public"/> — ids, route templates, counts: written as is.</item>
/// </list>
/// </summary>
public static class PortcullisTaxonomy
{
    public const string Name = "Portcullis";

    public static DataClassification Secret { get; } = new(Name, nameof(Secret));

    public static DataClassification Personal { get; } = new(Name, nameof(Personal));

    public static DataClassification Public { get; } = new(Name, nameof(Public));
}

/// <summary>A secret (password, token, client secret, credential header): never written, in any form.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter | AttributeTargets.ReturnValue)]
public sealed class SecretDataAttribute() : DataClassificationAttribute(PortcullisTaxonomy.Secret);

/// <summary>Personal data (username, e-mail, a typed login name): written only as a keyed hash.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter | AttributeTargets.ReturnValue)]
public sealed class PiiDataAttribute() : DataClassificationAttribute(PortcullisTaxonomy.Personal);

/// <summary>Public data (ids, route templates, counts): written as is.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field | AttributeTargets.Parameter | AttributeTargets.ReturnValue)]
public sealed class PublicDataAttribute() : DataClassificationAttribute(PortcullisTaxonomy.Public);

public static class Redaction
{
    /// <summary>The HMAC key for personal data, created on first use in the data directory (owner-only).</summary>
    public const string KeyFile = "redaction.key";

    /// <summary>
    /// Registers the redactors for <see cref="PortcullisTaxonomy"/> and turns redaction on for every logger, so a
    /// classified <c>[LoggerMessage]</c> parameter is redacted before any provider (console, file, tests) sees it.
    /// </summary>
    public static WebApplicationBuilder AddPortcullisRedaction(this WebApplicationBuilder builder, string dataDirectory)
    {
        builder.Services.AddRedaction(redaction =>
        {
            redaction.SetRedactor<ErasingRedactor>(new DataClassificationSet(PortcullisTaxonomy.Secret));
            redaction.SetRedactor<NullRedactor>(new DataClassificationSet(PortcullisTaxonomy.Public));
#pragma warning disable EXTEXP0002 // HmacRedactor is marked experimental; it is the library's keyed-hash redactor and the one to use here.
            redaction.SetHmacRedactor(hmac =>
            {
                hmac.KeyId = KeyId;
                hmac.Key = LoadOrCreateKey(dataDirectory);
            }, new DataClassificationSet(PortcullisTaxonomy.Personal));
#pragma warning restore EXTEXP0002
            // Anything classified with another taxonomy (a library's) is erased rather than written.
            redaction.SetFallbackRedactor<ErasingRedactor>();
        });
        // No discriminator: a name hashes the same in every log field and in the audit trail, so they correlate.
        builder.Logging.EnableRedaction(options => options.ApplyDiscriminator = false);
        return builder;
    }

    /// <summary>Written before every hash, so a reader knows which key made it (a new key file starts new hashes).</summary>
    private const int KeyId = 1;

    /// <summary>
    /// 32 random bytes, base64, in <c>{data directory}/redaction.key</c>, readable by the owner only. Never in
    /// configuration or the repository; losing it only means new hashes stop matching old ones.
    /// </summary>
    internal static string LoadOrCreateKey(string dataDirectory)
    {
        try
        {
            return LoadOrCreateKeyFile(dataDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only data directory must not stop logging: hash with a key of this process only (values still
            // never appear in clear; they just do not correlate across restarts).
            return Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        }
    }

    private static string LoadOrCreateKeyFile(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, KeyFile);
        if (File.Exists(path))
        {
            return File.ReadAllText(path).Trim();
        }

        PortcullisHost.EnsurePrivateDirectory(dataDirectory);
        // Written whole to a private temporary file, then moved into place: a concurrent reader (the CLI beside the
        // server) sees no file or the whole key, never a half-written one.
        var temporary = path + "." + Guid.NewGuid().ToString("N");
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        using (var stream = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(key);
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
            return key;
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary); // another process created it first: use theirs
            return File.ReadAllText(path).Trim();
        }
    }
}
