using System.Text.RegularExpressions;
using Portcullis.Accounts;

namespace Portcullis.Tests.Accounts;

/// <summary>Unit tests of <see cref="UsernameRules"/> (AUTH-12, VAL-08): no server needed.</summary>
public sealed class UsernameRulesTests
{
    [Theory]
    [InlineData("abc")]
    [InlineData("alice.smith_2-x")]
    [InlineData("Zoë")]
    [InlineData("e\u0301clair")] // decomposed é, normalized to NFKC
    [InlineData("\u0434\u0438\u043C\u0430")] // all Cyrillic
    [InlineData("\u03B1\u03B2\u03B3")] // all Greek
    [InlineData("\u5C71\u7530\u592A\u90CE")] // Han
    [InlineData("\uFF41\uFF4C\uFF49\uFF43\uFF45")] // full-width, NFKC makes it ASCII
    public void Acceptable_usernames_pass(string username) => Assert.Null(UsernameRules.Validate(username));

    [Fact]
    public void Length_is_3_to_64_code_points_after_normalization()
    {
        Assert.NotNull(UsernameRules.Validate("ab"));
        Assert.Null(UsernameRules.Validate(new string('a', 64)));
        Assert.NotNull(UsernameRules.Validate(new string('a', 65)));
        Assert.NotNull(UsernameRules.Validate(new string('a', 10_001)));
        Assert.NotNull(UsernameRules.Validate(""));
        Assert.NotNull(UsernameRules.Validate(null));
        // Astral letters count once each: 64 of them are 128 UTF-16 units.
        var astral = string.Concat(Enumerable.Repeat("\U00020000", 64));
        Assert.Null(UsernameRules.Validate(astral));
        Assert.NotNull(UsernameRules.Validate(astral + "\U00020000"));
    }

    [Theory]
    [InlineData("ali\u200Bce")] // zero-width space
    [InlineData("ali\u200Cce")] // zero-width non-joiner
    [InlineData("ali\u00ADce")] // soft hyphen
    [InlineData("admin\u202E")] // right-to-left override
    [InlineData("admin\u2067x")] // right-to-left isolate
    [InlineData("bob\u0007")]
    [InlineData("bob\u0000x")]
    [InlineData("bob\r\nevil")]
    [InlineData("bob\u0085x")] // C1 next line
    [InlineData("bob evil")]
    [InlineData("bob\u00A0evil")]
    [InlineData("bob\u3000evil")] // ideographic space (NFKC makes it a plain space)
    [InlineData(" alice")]
    [InlineData("alice ")]
    [InlineData("bob@evil")]
    [InlineData("bob/evil")]
    [InlineData("bob'--")]
    [InlineData("p\u0430ypal")] // Latin + Cyrillic "а"
    [InlineData("\u0440\u0430ypal")]
    [InlineData("\u03BFmega")] // Greek omicron + Latin
    [InlineData("\uD83D\uDE00smile")] // emoji
    public void Controls_format_characters_separators_symbols_and_mixed_scripts_are_refused(string username)
    {
        var error = UsernameRules.Validate(username);

        Assert.NotNull(error);
        Assert.DoesNotContain(username, error, StringComparison.Ordinal);
    }

    [Theory]
    // Escaped, because xunit's theory data serialization would turn a lone surrogate into U+FFFD.
    [InlineData(@"a\uD800bc")]
    [InlineData(@"abc\uDC00")]
    [InlineData(@"\uD800\uD800abc")]
    [InlineData(@"e\u0301\uD800clair")] // not NFC and ill-formed
    public void Lone_surrogates_are_refused_without_throwing(string escaped)
    {
        var username = Regex.Unescape(escaped);
        Assert.Contains(username, char.IsSurrogate);
        Assert.NotNull(UsernameRules.Validate(username));
    }

    [Fact]
    public void The_key_folds_case_and_width_so_look_alikes_collide()
    {
        Assert.Equal("alice", UsernameRules.Key("Alice"));
        Assert.Equal("alice", UsernameRules.Key("ALICE"));
        Assert.Equal("alice", UsernameRules.Key("\uFF21\uFF4C\uFF49\uFF43\uFF45"));
        Assert.Equal(UsernameRules.Key("\u00E9clair"), UsernameRules.Key("E\u0301CLAIR"));
        Assert.NotEqual(UsernameRules.Key("alice"), UsernameRules.Key("\u0430lice"));
    }

    [Fact]
    public void The_stored_form_is_NFKC_and_keeps_the_case()
    {
        Assert.Equal("Alice", UsernameRules.Canonical("\uFF21lice"));
        Assert.Equal("\u00E9clair", UsernameRules.Canonical("e\u0301clair"));
    }
}
