using System.ComponentModel.DataAnnotations;

namespace Portcullis.Accounts;

/// <summary>Accounts and passwords. Section <c>Accounts</c>.</summary>
public sealed class AccountOptions
{
    public const string Section = "Accounts";

    /// <summary>Self-registration at <c>POST /api/accounts</c>. Default true.</summary>
    public bool AllowRegistration { get; set; } = true;

    /// <summary>
    /// Refuse sign-in (password grant and sign-in page) to an account whose e-mail address is not verified yet.
    /// Default false. Needs outgoing mail (Email:Smtp) to send the verification link.
    /// </summary>
    public bool RequireVerifiedEmail { get; set; }

    /// <summary>Minimum password length in Unicode code points. Default 15 (NIST SP 800-63B-4 for single-factor).</summary>
    [Range(8, 64)]
    public int MinPasswordLength { get; set; } = 15;

    /// <summary>Maximum password length in code points. Default 1024; longer passwords are rejected before hashing.</summary>
    [Range(64, 1024)]
    public int MaxPasswordLength { get; set; } = 1024;

    /// <summary>Argon2id memory in KiB. Default 19456 (19 MiB, OWASP minimum).</summary>
    [Range(19456, 1048576)]
    public int Argon2MemoryKiB { get; set; } = 19456;

    /// <summary>Argon2id iterations. Default 2.</summary>
    [Range(2, 10)]
    public int Argon2Iterations { get; set; } = 2;
}
