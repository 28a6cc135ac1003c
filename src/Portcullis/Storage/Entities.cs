using Microsoft.AspNetCore.Identity;

namespace Portcullis.Storage;

/// <summary>An account. Never serialized directly: responses use explicit DTOs.</summary>
public sealed class User : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }

    public bool IsDisabled { get; set; }

    /// <summary>
    /// Bumped on password change, disable, "log out everywhere": access tokens carry the epoch they were issued
    /// under, so an older token dies at once without a database read per request.
    /// </summary>
    public int SecurityEpoch { get; set; }

    /// <summary>Set by an administrator: the next login must first choose a new password.</summary>
    public bool MustChangePassword { get; set; }
}

public sealed class Role : IdentityRole<Guid>
{
}

/// <summary>A token signing or encryption key; the private part is protected with Data Protection.</summary>
public sealed class SigningKey
{
    public Guid Id { get; set; }

    /// <summary>"sig" (ES256 signing) or "enc" (AES-256 refresh-token encryption).</summary>
    public required string Use { get; set; }

    public required string KeyId { get; set; }

    public required string Algorithm { get; set; }

    public required string ProtectedKey { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When set, the key no longer signs; it stays published until tokens it signed have expired.</summary>
    public DateTimeOffset? RetiredAt { get; set; }
}

/// <summary>
/// An append-only feed of revocations that every instance polls: a revoked access-token id, a revoked session
/// (OpenIddict authorization) or a user whose security state changed. Rows expire with the tokens they affect.
/// </summary>
public sealed class Revocation
{
    public long Id { get; set; }

    public required string Kind { get; set; }

    public required string Value { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

public static class RevocationKinds
{
    public const string AccessToken = "jti";
    public const string Session = "sid";
    public const string User = "user";
    public const string Role = "role";
}

/// <summary>
/// A message waiting to go out: written in the same transaction as the change that causes it, delivered by
/// <c>Email.OutboxSender</c> with retries. The body is protected with Data Protection (it may hold a live link)
/// and cleared once the message is sent or given up.
/// </summary>
public sealed class OutboxMessage
{
    public long Id { get; set; }

    public required string To { get; set; }

    public required string Subject { get; set; }

    public string? ProtectedBody { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the next attempt is due; also moved forward while an instance holds the message.</summary>
    public DateTimeOffset NextAttemptAt { get; set; }

    public int Attempts { get; set; }

    public DateTimeOffset? SentAt { get; set; }

    public DateTimeOffset? FailedAt { get; set; }

    /// <summary>The last SMTP error, short; never a credential.</summary>
    public string? LastError { get; set; }
}

/// <summary>
/// A single-use token sent by e-mail (password reset, address verification). Only its SHA-256 is stored; it is
/// bound to the account and to the security stamp the account had when it was issued.
/// </summary>
public sealed class AccountToken
{
    public long Id { get; set; }

    public Guid UserId { get; set; }

    /// <summary><see cref="AccountTokenPurposes"/>.</summary>
    public required string Purpose { get; set; }

    /// <summary>SHA-256 of the token, lowercase hex.</summary>
    public required string Hash { get; set; }

    public required string SecurityStamp { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? UsedAt { get; set; }
}

public static class AccountTokenPurposes
{
    public const string Reset = "reset";
    public const string Verify = "verify";
}
