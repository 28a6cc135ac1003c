using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Identity;

namespace Portcullis.Accounts;

/// <summary>
/// Usernames after RFC 8265 (PRECIS UsernameCaseMapped), simplified: NFKC (which also maps full-width forms),
/// then case-folded for comparison. Controls, format characters (bidi overrides, zero-width), separators other
/// than the ASCII space-free set, and names that mix scripts (a Cyrillic "а" in a Latin name) are refused.
/// </summary>
public static class UsernameRules
{
    public const int MaxLength = 64;

    /// <summary>The stored display form: NFKC.</summary>
    public static string Canonical(string username) => username.Normalize(NormalizationForm.FormKC);

    /// <summary>The unique comparison key: NFKC, lower-cased invariantly, NFKC again (case mapping can denormalize).</summary>
    public static string Key(string username) =>
        Canonical(username).ToLowerInvariant().Normalize(NormalizationForm.FormKC);

    /// <summary>Returns an error message, or null when the username is acceptable. Never echoes the value.</summary>
    public static string? Validate(string? username)
    {
        if (string.IsNullOrEmpty(username))
        {
            return "A username is required.";
        }

        // Ill-formed UTF-16 (a lone surrogate) makes normalization throw: refuse it before anything normalizes.
        if (!IsWellFormed(username))
        {
            return "The username contains invalid characters.";
        }

        var canonical = Canonical(username);
        var length = canonical.EnumerateRunes().Count();
        if (length is < 3 or > MaxLength)
        {
            return $"A username has 3 to {MaxLength} characters.";
        }

        Script? seen = null;
        foreach (var rune in canonical.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            var allowed = category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
                    or UnicodeCategory.OtherLetter or UnicodeCategory.DecimalDigitNumber
                    or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                || rune.Value is '.' or '_' or '-';
            if (!allowed)
            {
                return "A username may contain only letters, digits, '.', '_' and '-'.";
            }

            var script = ScriptOf(rune);
            if (script is Script.Common)
            {
                continue;
            }

            if (seen is not null && seen != script)
            {
                return "A username may not mix letters of different scripts.";
            }

            seen = script;
        }

        return null;
    }

    private static bool IsWellFormed(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsSurrogate(s[i]) && !(char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[++i])))
            {
                return false;
            }
        }

        return true;
    }

    private enum Script { Common, Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai, Hangul, Han, Kana, Other }

    // .NET exposes no Unicode Script property; blocks are close enough to catch the confusable mixes that matter.
    private static Script ScriptOf(Rune rune) => rune.Value switch
    {
        < 0x80 when Rune.IsLetter(rune) => Script.Latin,
        < 0x80 => Script.Common,
        >= 0x00C0 and <= 0x024F => Script.Latin,
        >= 0x1E00 and <= 0x1EFF => Script.Latin,
        >= 0x0300 and <= 0x036F => Script.Common,
        >= 0x0370 and <= 0x03FF => Script.Greek,
        >= 0x1F00 and <= 0x1FFF => Script.Greek,
        >= 0x0400 and <= 0x052F => Script.Cyrillic,
        >= 0x0530 and <= 0x058F => Script.Armenian,
        >= 0x0590 and <= 0x05FF => Script.Hebrew,
        >= 0x0600 and <= 0x06FF => Script.Arabic,
        >= 0x0900 and <= 0x097F => Script.Devanagari,
        >= 0x0E00 and <= 0x0E7F => Script.Thai,
        >= 0xAC00 and <= 0xD7AF => Script.Hangul,
        >= 0x1100 and <= 0x11FF => Script.Hangul,
        >= 0x3040 and <= 0x30FF => Script.Kana,
        >= 0x4E00 and <= 0x9FFF => Script.Han,
        _ when Rune.IsDigit(rune) => Script.Common,
        _ => Script.Other,
    };
}

/// <summary>Identity's lookup key for usernames and e-mails: the same key as the unique index.</summary>
public sealed class PortcullisLookupNormalizer : ILookupNormalizer
{
    public string? NormalizeName(string? name) => name is null ? null : UsernameRules.Key(name);

    public string? NormalizeEmail(string? email) => email?.Normalize(NormalizationForm.FormKC).ToLowerInvariant();
}
