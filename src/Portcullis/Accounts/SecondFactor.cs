using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portcullis.Audit;
using Portcullis.RateLimits;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// The authenticator app (TOTP, RFC 6238) and its recovery codes, on ASP.NET Core Identity: its authenticator token
/// provider checks the codes and generates the key, its recovery codes are the look-up secrets. Portcullis adds what
/// Identity leaves out: a code is accepted once (<see cref="VerifyCodeAsync"/>), recovery codes are stored as hashes
/// (<see cref="HashedRecoveryCodeUserStore"/>), and every change is an audit event that ends the user's sessions
/// (the security epoch moves on, like a password change). Everything lives in Identity's <c>AspNetUserTokens</c>.
/// </summary>
public sealed class SecondFactor(UserManager<User> users, SessionTerminator terminator, AuditLog audit, PortcullisDb db)
{
    public const int RecoveryCodeCount = 10;

    /// <summary>The <c>AspNetUserTokens</c> login provider of Portcullis's own rows (Identity's is <c>[AspNetUserStore]</c>).</summary>
    public const string TokenProvider = "[Portcullis]";

    /// <summary>The codes accepted lately, so each is accepted once: <c>step:code</c> pairs, comma-separated.</summary>
    public const string UsedCodesToken = "TotpUsed";

    /// <summary>Identity's provider accepts the code of the current 30-second step and of the two before and after it.</summary>
    private const int StepSeconds = 30;
    private const int StepsEitherSide = 2;

    /// <summary>Whether the input is meant as an authenticator code (six digits; spaces and hyphens ignored).</summary>
    public static bool IsAuthenticatorCode(string? input) => NormalizeCode(input) is { Length: 6 } code && code.All(char.IsAsciiDigit);

    /// <summary>A new key for an enrolment not yet confirmed. Refused (null) while the app is on: turn it off first.</summary>
    public async Task<string?> StartEnrolmentAsync(User user)
    {
        if (user.TwoFactorEnabled)
        {
            return null;
        }

        await users.ResetAuthenticatorKeyAsync(user);
        return await users.GetAuthenticatorKeyAsync(user);
    }

    /// <summary>The key of the enrolment in progress, or null (none started, or already confirmed).</summary>
    public async Task<string?> PendingKeyAsync(User user) => user.TwoFactorEnabled ? null : await users.GetAuthenticatorKeyAsync(user);

    /// <summary>The <c>otpauth://</c> URI the QR code holds (the de-facto Key Uri Format authenticator apps read).</summary>
    public static string AuthenticatorUri(string issuer, string username, string key) =>
        string.Create(CultureInfo.InvariantCulture,
            $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(username)}?secret={key}&issuer={Uri.EscapeDataString(issuer)}&digits=6&period={StepSeconds}");

    /// <summary>The key in groups of four, lower case, for typing into an app by hand.</summary>
    public static string FormatKey(string key) =>
        string.Join(' ', key.ToLowerInvariant().Chunk(4).Select(c => new string(c)));

    /// <summary>
    /// Checks an authenticator code with Identity's provider, and accepts each code once (RFC 6238 §5.2): a code
    /// accepted at step <c>s</c> matched a step within two of it, so it cannot be valid after step <c>s + 4</c>;
    /// until then the same code is refused. The acceptance is saved under the user's concurrency stamp, so of two
    /// requests racing with one code (on any instance) only one succeeds.
    /// </summary>
    public async Task<bool> VerifyCodeAsync(User user, string? input)
    {
        var code = NormalizeCode(input);
        if (code is not { Length: 6 } || !code.All(char.IsAsciiDigit) || await users.GetAuthenticatorKeyAsync(user) is null)
        {
            return false;
        }

        // Identity's provider reads the wall clock (DateTime.UtcNow), not TimeProvider: the record of used codes must
        // count steps on the same clock.
        var step = DateTimeOffset.UtcNow.ToUnixTimeSeconds() / StepSeconds;
        var used = ParseUsed(await users.GetAuthenticationTokenAsync(user, TokenProvider, UsedCodesToken))
            .Where(u => u.Step >= step - (2 * StepsEitherSide))
            .ToList();
        if (used.Any(u => u.Code == code))
        {
            return false;
        }

        if (!await users.VerifyTwoFactorTokenAsync(user, TokenOptions.DefaultAuthenticatorProvider, code))
        {
            return false;
        }

        used.Add((step, code));
        var saved = await users.SetAuthenticationTokenAsync(user, TokenProvider, UsedCodesToken,
            string.Join(',', used.Select(u => string.Create(CultureInfo.InvariantCulture, $"{u.Step}:{u.Code}"))));
        return saved.Succeeded || Lost();
    }

    /// <summary>
    /// Another request changed the user first (Identity reports the concurrency failure, it does not throw): its
    /// changes stay tracked and would fail the next save (the audit event's), so they are dropped. The race is lost.
    /// </summary>
    private bool Lost()
    {
        db.ChangeTracker.Clear();
        return false;
    }

    /// <summary>
    /// Confirms the enrolment with a first code: the app is on, ten new recovery codes are returned (to be shown
    /// once; only their hashes are kept) and every session of the user ends. Null when the code is wrong.
    /// </summary>
    public async Task<IReadOnlyList<string>?> EnableAsync(User user, string? code, CancellationToken ct)
    {
        if (user.TwoFactorEnabled || !await VerifyCodeAsync(user, code))
        {
            return null;
        }

        IReadOnlyList<string> codes = [];
        audit.Record(AuditEvents.SecondFactorEnabled, AuditOutcomes.Success, $"user:{user.Id}", new { method = "totp", recoveryCodes = RecoveryCodeCount, sessionsEnded = "all" });
        await terminator.EndAllSessionsAsync(user, async () =>
        {
            await users.SetTwoFactorEnabledAsync(user, true);
            codes = [.. await users.GenerateNewTwoFactorRecoveryCodesAsync(user, RecoveryCodeCount) ?? []];
        }, ct);
        return codes;
    }

    /// <summary>Turns the app off: the key, the recovery codes and the used-code record go, and every session ends.</summary>
    public async Task DisableAsync(User user, string proof, CancellationToken ct)
    {
        audit.Record(AuditEvents.SecondFactorDisabled, AuditOutcomes.Success, $"user:{user.Id}", new { method = "totp", proof, sessionsEnded = "all" });
        await terminator.EndAllSessionsAsync(user, async () =>
        {
            await users.SetTwoFactorEnabledAsync(user, false);
            await users.ResetAuthenticatorKeyAsync(user); // a fresh key nobody has seen, never shown; a new enrolment resets it again
            await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 0);
            await users.RemoveAuthenticationTokenAsync(user, TokenProvider, UsedCodesToken);
        }, ct);
    }

    /// <summary>
    /// Redeems a recovery code (once: it is removed). Using one is an audit event and ends every session of the user,
    /// as a recovery code is what someone uses when the phone is lost.
    /// </summary>
    public async Task<bool> RedeemRecoveryCodeAsync(User user, string? input, CancellationToken ct)
    {
        if (NormalizeRecoveryCode(input) is not { } code || !user.TwoFactorEnabled)
        {
            return false;
        }

        var redeemed = await users.RedeemTwoFactorRecoveryCodeAsync(user, code);
        if (!redeemed.Succeeded)
        {
            return Lost();
        }

        audit.Record(AuditEvents.RecoveryCodeUsed, AuditOutcomes.Success, $"user:{user.Id}",
            new { remaining = await users.CountRecoveryCodesAsync(user), sessionsEnded = "all" }, actor: $"user:{user.Id}");
        await terminator.EndAllSessionsAsync(user, null, ct);
        return true;
    }

    public Task<int> RecoveryCodesLeftAsync(User user) => users.CountRecoveryCodesAsync(user);

    private static string? NormalizeCode(string? input) =>
        input is { Length: > 0 and <= 32 } ? string.Concat(input.Where(c => c is not (' ' or '-'))) : null;

    /// <summary>Identity's codes are <c>XXXXX-XXXXX</c> in upper case; accept lower case and a missing hyphen.</summary>
    internal static string? NormalizeRecoveryCode(string? input)
    {
        if (input is not { Length: > 0 and <= 32 })
        {
            return null;
        }

        var bare = string.Concat(input.Where(char.IsAsciiLetterOrDigit)).ToUpperInvariant();
        return bare.Length == 10 ? bare[..5] + "-" + bare[5..] : null;
    }

    private static IEnumerable<(long Step, string Code)> ParseUsed(string? value)
    {
        foreach (var entry in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split(':');
            if (parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var step))
            {
                yield return (step, parts[1]);
            }
        }
    }
}

/// <summary>
/// Identity's user store with recovery codes kept as SHA-256 hashes: Identity's own store writes them in clear to
/// <c>AspNetUserTokens</c>. The codes are random (50 bits each), so an unsalted hash is enough to make a copy of the
/// database useless for signing in; Identity's redeem compares against the stored list, so the code presented is hashed
/// the same way first.
/// </summary>
public sealed class HashedRecoveryCodeUserStore(PortcullisDb context, IdentityErrorDescriber? describer = null)
    : UserStore<User, Role, PortcullisDb, Guid>(context, describer)
{
    public override Task ReplaceCodesAsync(User user, IEnumerable<string> recoveryCodes, CancellationToken cancellationToken = default) =>
        base.ReplaceCodesAsync(user, recoveryCodes.Select(Hash), cancellationToken);

    // Identity's row for the codes (its UserStoreBase keeps these names private).
    private const string IdentityProvider = "[AspNetUserStore]";
    private const string RecoveryCodesName = "RecoveryCodes";

    /// <summary>
    /// Not the base method: it writes the codes left back through <see cref="ReplaceCodesAsync"/>, which would hash
    /// the stored hashes again. UserManager saves the change under the user's concurrency stamp, so two requests
    /// racing with one code cannot both succeed.
    /// </summary>
    public override async Task<bool> RedeemCodeAsync(User user, string code, CancellationToken cancellationToken = default)
    {
        var hash = Hash(code);
        var stored = (await GetTokenAsync(user, IdentityProvider, RecoveryCodesName, cancellationToken) ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries);
        if (!stored.Contains(hash, StringComparer.Ordinal))
        {
            return false;
        }

        await SetTokenAsync(user, IdentityProvider, RecoveryCodesName, string.Join(';', stored.Where(s => s != hash)), cancellationToken);
        return true;
    }

    internal static string Hash(string code) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(code)));
}

/// <summary>
/// The throttle for second-factor codes: the login throttle's rules (per account, per IP) on their own counters. Its
/// own, because a right password clears the password throttle of the name: sharing it would let someone who knows the
/// password reset the code throttle at will by signing in again.
/// </summary>
public sealed class SecondFactorThrottle(IOptions<LoginThrottleOptions> options, TimeProvider time) : IDisposable
{
    public LoginThrottle Throttle { get; } = new(options, time);

    public void Dispose() => Throttle.Dispose();
}
