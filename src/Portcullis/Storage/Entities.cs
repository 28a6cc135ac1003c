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
