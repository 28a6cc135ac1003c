using System.Text;
using Geralt;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// Argon2id (libsodium via Geralt), written as the standard <c>$argon2id$v=19$m=…,t=…,p=1$…</c> string.
/// Older hashes (Identity's PBKDF2 V2/V3, or Argon2id with weaker parameters) still verify and are rewritten
/// on the next successful login (UserManager does that when this returns SuccessRehashNeeded). In a request, every
/// call must hold a <see cref="PasswordHashingLimiter"/> permit (checked here).
/// </summary>
public sealed class Argon2PasswordHasher(IOptions<AccountOptions> options, PasswordHashingLimiter limiter, PortcullisMetrics metrics) : IPasswordHasher<User>
{
    private const string Prefix = "$argon2id$";
    private readonly PasswordHasher<User> _legacy = new();

    // A fixed hash with the current parameters, verified for unknown users so they cost the same work.
    private readonly Lazy<string> _dummy = new(() => Hash("portcullis-dummy-password-for-equal-work", options.Value));

    public string HashPassword(User user, string password)
    {
        Count("hash");
        return Hash(password, options.Value);
    }

    public PasswordVerificationResult VerifyHashedPassword(User user, string hashedPassword, string providedPassword)
    {
        Count("verify");
        if (!hashedPassword.StartsWith(Prefix, StringComparison.Ordinal))
        {
            // Identity's own format (PBKDF2). Never keep it after a successful login.
            var legacy = _legacy.VerifyHashedPassword(user, hashedPassword, providedPassword);
            return legacy == PasswordVerificationResult.Failed
                ? PasswordVerificationResult.Failed
                : PasswordVerificationResult.SuccessRehashNeeded;
        }

        var password = Encoding.UTF8.GetBytes(providedPassword);
        if (!Argon2id.VerifyHash(hashedPassword, password))
        {
            return PasswordVerificationResult.Failed;
        }

        var o = options.Value;
        return Argon2id.NeedsRehash(hashedPassword, o.Argon2Iterations, o.Argon2MemoryKiB * 1024)
            ? PasswordVerificationResult.SuccessRehashNeeded
            : PasswordVerificationResult.Success;
    }

    /// <summary>Spends the same work as a real verification, for accounts that do not exist.</summary>
    public void VerifyDummy(string providedPassword)
    {
        Count("verify_dummy");
        Argon2id.VerifyHash(_dummy.Value, Encoding.UTF8.GetBytes(providedPassword));
    }

    private void Count(string operation)
    {
        limiter.EnsureAdmitted();
        metrics.PasswordHashes.Add(1, new KeyValuePair<string, object?>("operation", operation));
    }

    private static string Hash(string password, AccountOptions o)
    {
        Span<char> hash = stackalloc char[Argon2id.HashSize];
        Argon2id.ComputeHash(hash, Encoding.UTF8.GetBytes(password), o.Argon2Iterations, o.Argon2MemoryKiB * 1024);
        return hash.TrimEnd('\0').ToString();
    }
}
