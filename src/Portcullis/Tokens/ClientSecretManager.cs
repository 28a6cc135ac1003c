using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace Portcullis.Tokens;

/// <summary>
/// Client secrets are not passwords: Portcullis generates every one (256 random bits, <c>ClientAdministration</c>),
/// so no guessing attack on a stolen hash can succeed however fast the hash is. NIST SP 800-63B §5.1.2.2 asks for
/// exactly this split — a secret of at least 112 bits of entropy is stored with an approved one-way function, a
/// slow key derivation is for what people choose. OpenIddict's default stores PBKDF2 (10,000 rounds of
/// HMAC-SHA-256), the largest CPU cost of every client_credentials grant (BENCHMARKS.md).
/// <para>
/// So a secret of at least <see cref="MinimumFastHashLength"/> characters is stored as
/// <c>hmac-sha256$salt$mac</c> (a 128-bit random salt as the HMAC key) and compared in constant time. Anything
/// shorter — which Portcullis never generates — and every hash stored before this (OpenIddict's format) still goes
/// through OpenIddict's own PBKDF2 code, so existing clients keep working and a rotation moves them over.
/// </para>
/// </summary>
public sealed class ClientSecretManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store)
    : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
    /// <summary>43 base64url characters: the length of Portcullis's 256-bit secrets (at least 6 bits each).</summary>
    public const int MinimumFastHashLength = 43;

    public const string Prefix = "hmac-sha256$";

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default)
    {
        if (secret.Length < MinimumFastHashLength)
        {
            return base.ObfuscateClientSecretAsync(secret, cancellationToken);
        }

        var salt = RandomNumberGenerator.GetBytes(16);
        return ValueTask.FromResult($"{Prefix}{Convert.ToBase64String(salt)}${Convert.ToBase64String(Mac(salt, secret))}");
    }

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default)
    {
        if (!comparand.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return base.ValidateClientSecretAsync(secret, comparand, cancellationToken);
        }

        var parts = comparand[Prefix.Length..].Split('$');
        if (parts.Length != 2)
        {
            return ValueTask.FromResult(false);
        }

        try
        {
            var expected = Convert.FromBase64String(parts[1]);
            return ValueTask.FromResult(CryptographicOperations.FixedTimeEquals(Mac(Convert.FromBase64String(parts[0]), secret), expected));
        }
        catch (FormatException)
        {
            return ValueTask.FromResult(false); // a damaged stored value never matches
        }
    }

    private static byte[] Mac(byte[] salt, string secret) => HMACSHA256.HashData(salt, Encoding.UTF8.GetBytes(secret));
}
