using System.IO.Compression;
using System.Text;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.Accounts;

/// <summary>
/// Password rules after NIST SP 800-63B-4 §3.1.1.2: length in code points (min 15 by default, max 1024), no
/// composition rules, no truncation or trimming, and a blocklist of common and breached passwords plus context
/// words. Messages name the rule, never the password.
/// </summary>
public sealed class PasswordPolicy(IOptions<AccountOptions> options)
{
    private static readonly Lazy<HashSet<string>> Blocklist = new(LoadBlocklist);

    private static readonly string[] ContextWords = ["portcullis"];

    /// <summary>Length in Unicode code points (a lone surrogate counts as one, and is refused elsewhere).</summary>
    public static int CodePoints(string s)
    {
        var count = 0;
        for (var i = 0; i < s.Length; i++, count++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
        }

        return count;
    }

    /// <summary>True when the password is too long to hash at all (checked before any work, also at login).</summary>
    public bool IsOverLong(string password) =>
        password.Length > options.Value.MaxPasswordLength * 2 || CodePoints(password) > options.Value.MaxPasswordLength;

    /// <summary>Returns the broken rule, or null.</summary>
    public string? Validate(string? password, string? username)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(password))
        {
            return "A password is required.";
        }

        if (IsOverLong(password))
        {
            return $"A password has at most {o.MaxPasswordLength} characters.";
        }

        if (CodePoints(password) < o.MinPasswordLength)
        {
            return $"A password has at least {o.MinPasswordLength} characters.";
        }

        for (var i = 0; i < password.Length; i++)
        {
            if (char.IsSurrogate(password[i]) && !(char.IsHighSurrogate(password[i]) && i + 1 < password.Length && char.IsLowSurrogate(password[++i])))
            {
                return "The password contains invalid characters.";
            }
        }

        var folded = password.Normalize(NormalizationForm.FormKC).ToLowerInvariant();
        // "password123456789" and "Password1234567!" are a listed word with a predictable tail (NIST's "expected
        // values"): the list only holds the bare word, so the word is looked up without the tail too.
        if (Blocklist.Value.Contains(folded) || Blocklist.Value.Contains(WithoutPredictableTail(folded)))
        {
            return "This password is too common or has appeared in a data breach; choose another.";
        }

        if (!string.IsNullOrEmpty(username) && folded.Contains(UsernameRules.Key(username), StringComparison.Ordinal))
        {
            return "The password may not contain the username.";
        }

        foreach (var word in ContextWords)
        {
            if (folded.Contains(word, StringComparison.Ordinal))
            {
                return "The password may not contain the product name.";
            }
        }

        return null;
    }

    /// <summary>The password without trailing ASCII digits, punctuation, symbols and spaces.</summary>
    private static string WithoutPredictableTail(string folded)
    {
        var end = folded.Length;
        while (end > 0 && char.IsAscii(folded[end - 1]) && !char.IsAsciiLetter(folded[end - 1]))
        {
            end--;
        }

        return folded[..end];
    }

    internal static int BlocklistCount => Blocklist.Value.Count;

    private static HashSet<string> LoadBlocklist()
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream("Portcullis.Accounts.common-passwords.txt.gz")
            ?? throw new InvalidOperationException("The password blocklist resource is missing from the build.");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0)
            {
                set.Add(line);
            }
        }

        return set;
    }
}
