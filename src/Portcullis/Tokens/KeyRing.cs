using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Tokens;

/// <summary>
/// The token keys, loaded from the database: ES256 signing keys (the newest active one signs; retired ones stay
/// published until the tokens they signed have expired) and one AES-256 key that encrypts refresh-token payloads.
/// Private parts are stored protected with Data Protection, whose key ring is in the same database, encrypted with a
/// key-encryption key that is not (<see cref="KeyEncryption"/>).
/// A reload fires a change token so OpenIddict picks the new keys up without a restart.
/// </summary>
public sealed class KeyRing(IDataProtectionProvider dataProtection, IOptions<TokensOptions> tokenOptions, TimeProvider time) : IDisposable
{
    public const string SigningUse = "sig";
    public const string EncryptionUse = "enc";
    internal const string Purpose = "Portcullis.Tokens.KeyRing.v1";

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);
    private volatile Snapshot _current = new([], new Dictionary<string, SecurityKey>(StringComparer.Ordinal), null, "");
    private CancellationTokenSource _changed = new();

    public sealed record Snapshot(
        IReadOnlyList<ECDsaSecurityKey> SigningKeys,
        IReadOnlyDictionary<string, SecurityKey> ByKeyId,
        SymmetricSecurityKey? EncryptionKey,
        string Fingerprint);

    public Snapshot Current => _current;

    public IChangeToken GetChangeToken() => new CancellationChangeToken(_changed.Token);

    /// <summary>Looks a key up by <c>kid</c> only: an unknown kid finds nothing (no trying every key).</summary>
    public SecurityKey? Find(string? keyId) =>
        keyId is not null && _current.ByKeyId.TryGetValue(keyId, out var key) ? key : null;

    /// <summary>Creates the first keys when there are none. Idempotent.</summary>
    public async Task EnsureKeysAsync(PortcullisDb db, CancellationToken ct)
    {
        if (!await db.SigningKeys.AnyAsync(k => k.Use == SigningUse && k.RetiredAt == null, ct))
        {
            db.SigningKeys.Add(NewSigningKey());
        }

        if (!await db.SigningKeys.AnyAsync(k => k.Use == EncryptionUse, ct))
        {
            db.SigningKeys.Add(NewEncryptionKey());
        }

        await db.SaveChangesAsync(ct);
    }

    /// <summary>Adds a new signing key that signs from now on; the previous one is retired but still published.</summary>
    public async Task<SigningKey> RotateAsync(PortcullisDb db, Audit.AuditLog audit, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var active = await db.SigningKeys.Where(k => k.Use == SigningUse && k.RetiredAt == null).ToListAsync(ct);
        foreach (var key in active)
        {
            key.RetiredAt = now;
        }

        var created = NewSigningKey();
        db.SigningKeys.Add(created);
        audit.Record(Audit.AuditEvents.KeyRotated, Audit.AuditOutcomes.Success, $"key:{created.KeyId}");
        await db.SaveChangesAsync(ct);
        return created;
    }

    /// <summary>Reads the keys from the database; fires the change token when the set differs.</summary>
    public async Task<bool> ReloadAsync(PortcullisDb db, CancellationToken ct)
    {
        // A retired key is kept while tokens it signed can still be valid (lifetime plus skew), then dropped.
        var o = tokenOptions.Value;
        var keepAfter = time.GetUtcNow() - o.AccessTokenLifetime - o.ClockSkew - TimeSpan.FromMinutes(1);
        var rows = await db.SigningKeys.AsNoTracking().ToListAsync(ct);
        var usable = rows
            .Where(k => k.Use == EncryptionUse || k.RetiredAt == null || k.RetiredAt > keepAfter)
            .OrderBy(k => k.RetiredAt.HasValue)
            .ThenByDescending(k => k.CreatedAt)
            .ToList();

        var fingerprint = string.Join(',', usable.Select(k => k.KeyId + (k.RetiredAt.HasValue ? "-r" : "")));
        if (fingerprint == _current.Fingerprint)
        {
            return false;
        }

        var signing = new List<ECDsaSecurityKey>();
        var byId = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
        SymmetricSecurityKey? encryption = null;
        foreach (var row in usable)
        {
            byte[] secret;
            try
            {
                secret = _protector.Unprotect(Convert.FromBase64String(row.ProtectedKey));
            }
            catch (CryptographicException)
            {
                throw new Hosting.StartupException(
                    $"Token key '{row.KeyId}' cannot be decrypted: the key-encryption key (KeyEncryption settings, or {KeyEncryption.DefaultFile} in the data directory) is not the one the key ring was encrypted with, or the Data Protection key ring in the database is missing or belongs to another installation. Restore the database together with its key-encryption key.");
            }

            if (row.Use == SigningUse)
            {
                var ecdsa = ECDsa.Create();
                ecdsa.ImportPkcs8PrivateKey(secret, out _);
                if (ecdsa.KeySize != 256)
                {
                    throw new InvalidOperationException($"Signing key '{row.KeyId}' is not a P-256 key; rotate keys with 'portcullis keys rotate'.");
                }

                var key = new ECDsaSecurityKey(ecdsa) { KeyId = row.KeyId };
                signing.Add(key);
                byId[row.KeyId] = key;
            }
            else if (encryption is null)
            {
                if (secret.Length != 32)
                {
                    throw new InvalidOperationException($"Encryption key '{row.KeyId}' is not a 256-bit key.");
                }

                encryption = new SymmetricSecurityKey(secret) { KeyId = row.KeyId };
            }

            CryptographicOperations.ZeroMemory(secret);
        }

        if (signing.Count == 0 || encryption is null)
        {
            throw new InvalidOperationException("No usable token keys in the database; run 'portcullis keys rotate'.");
        }

        _current = new Snapshot(signing, byId, encryption, fingerprint);
        var previous = Interlocked.Exchange(ref _changed, new CancellationTokenSource());
        previous.Cancel();
        previous.Dispose();
        return true;
    }

    public void Dispose() => _changed.Dispose();

    private SigningKey NewSigningKey()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new SigningKey
        {
            Id = Guid.CreateVersion7(),
            Use = SigningUse,
            KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)),
            Algorithm = SecurityAlgorithms.EcdsaSha256,
            ProtectedKey = Convert.ToBase64String(_protector.Protect(ecdsa.ExportPkcs8PrivateKey())),
            CreatedAt = time.GetUtcNow(),
        };
    }

    private SigningKey NewEncryptionKey() => new()
    {
        Id = Guid.CreateVersion7(),
        Use = EncryptionUse,
        KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12)),
        Algorithm = SecurityAlgorithms.Aes256KW,
        ProtectedKey = Convert.ToBase64String(_protector.Protect(RandomNumberGenerator.GetBytes(32))),
        CreatedAt = time.GetUtcNow(),
    };
}
