using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Portcullis.Accounts;
using Portcullis.Hosting;

namespace Portcullis.Tests.Accounts;

/// <summary>Unit tests of <see cref="PasswordPolicy"/> (AUTH-01..04): no server needed.</summary>
public sealed class PasswordPolicyTests
{
    private readonly PasswordPolicy _policy = new(Options.Create(new AccountOptions()));

    private static string Astral(int count) => string.Concat(Enumerable.Repeat("\U0001F510", count));

    [Fact]
    public void Length_counts_code_points_not_utf16_units()
    {
        Assert.Equal(15, PasswordPolicy.CodePoints(Astral(15)));
        Assert.Null(_policy.Validate(Astral(15), "someone"));
        Assert.NotNull(_policy.Validate(Astral(14), "someone")); // 28 UTF-16 units, still 14 code points
        Assert.NotNull(_policy.Validate(new string('z', 14) , "someone"));
        Assert.Null(_policy.Validate("zq xw vy mf kj pl t", "someone"));
    }

    [Fact]
    public void The_maximum_is_1024_code_points_even_when_they_are_astral()
    {
        Assert.Null(_policy.Validate(Astral(1024), "someone"));
        Assert.NotNull(_policy.Validate(Astral(1025), "someone"));
        Assert.Null(_policy.Validate(string.Concat(Enumerable.Repeat("jq", 512)), "someone"));
        Assert.NotNull(_policy.Validate(string.Concat(Enumerable.Repeat("jq", 512)) + "x", "someone"));
        Assert.True(_policy.IsOverLong(new string('x', 1025)));
        Assert.False(_policy.IsOverLong(new string('x', 1024)));
        Assert.True(_policy.IsOverLong(new string('x', 1_000_000)));
    }

    [Theory]
    [InlineData("password123456789")]
    [InlineData("Password1234567!")]
    [InlineData("qwertyuiopasdfgh")]
    [InlineData("QWERTYUIOPASDFGH")]
    [InlineData("\uFF51\uFF57\uFF45\uFF52\uFF54\uFF59\uFF55\uFF49\uFF4F\uFF50\uFF41\uFF53\uFF44\uFF46\uFF47\uFF48")] // full-width
    [InlineData("iloveyou12345678")]
    [InlineData("password!!!!!!!!")]
    [InlineData("Password 2025 !!")]
    [InlineData("portcullissecure2025")]
    [InlineData("My PORTCULLIS password")]
    public void Common_breached_and_context_passwords_are_refused(string password)
    {
        var error = _policy.Validate(password, "someone");

        Assert.NotNull(error);
        Assert.DoesNotContain(password, error, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("correct horse battery staple 7")]
    [InlineData("a long and unusual passphrase 7731")]
    [InlineData("maple river quietly folds eleven paper cranes")]
    [InlineData("Tranquil Harbor Lanterns 4821")]
    public void Uncommon_passphrases_are_accepted(string password) => Assert.Null(_policy.Validate(password, "someone"));

    [Fact]
    public void A_password_containing_the_username_is_refused_whatever_its_case_or_width()
    {
        Assert.NotNull(_policy.Validate("hello Mallory how are you", "mallory"));
        Assert.NotNull(_policy.Validate("hello MALLORY how are you", "Mallory"));
        Assert.NotNull(_policy.Validate("hello \uFF4D\uFF41\uFF4C\uFF4C\uFF4F\uFF52\uFF59 how are you", "mallory"));
        Assert.Null(_policy.Validate("hello Mallory how are you", "trent"));
    }

    [Fact]
    public void Nothing_is_trimmed_or_folded_before_the_length_check()
    {
        // 14 visible characters plus a space is 15: spaces count, like every other character.
        Assert.Null(_policy.Validate("zqxwvymfkjpltb ", "someone"));
        Assert.NotNull(_policy.Validate("zqxwvymfkjpltb", "someone"));
    }

    [Theory]
    // Escaped, because xunit's theory data serialization would turn a lone surrogate into U+FFFD.
    [InlineData(@"abcdefghijklmnop\uD800")]
    [InlineData(@"\uDC00abcdefghijklmnop")]
    [InlineData(@"abcdefgh\uD800\uD800ijklmnop")]
    public void Lone_surrogates_are_refused(string escaped)
    {
        var password = Regex.Unescape(escaped);
        Assert.Contains(password, char.IsSurrogate);
        Assert.NotNull(_policy.Validate(password, "someone"));
    }

    [Fact]
    public void Empty_and_null_passwords_are_refused()
    {
        Assert.NotNull(_policy.Validate(null, "someone"));
        Assert.NotNull(_policy.Validate("", "someone"));
    }

    [Fact]
    public void The_blocklist_is_loaded_in_full() => Assert.True(PasswordPolicy.BlocklistCount > 190_000);
}
