using System.Text;
using Portcullis.Accounts;

namespace Portcullis.Tests.Accounts;

/// <summary>The packed blocklist answers exactly like an ordinal set of its lines, whatever the input order.</summary>
public sealed class SortedBlocklistTests
{
    [Fact]
    public void Contains_matches_an_ordinal_set_of_the_lines()
    {
        string[] lines = ["zebra", "Password", "passwörd", "123456", "password", "", "aa", "a", "日本語パス", "password", "ǅ"];
        var text = string.Join("\r\n", lines) + "\n";
        var list = PasswordPolicy.SortedBlocklist.FromLines(Encoding.UTF8.GetBytes(text));
        var set = new HashSet<string>(lines.Where(l => l.Length > 0), StringComparer.Ordinal);

        Assert.Equal(lines.Count(l => l.Length > 0), list.Count); // duplicates kept, empty lines dropped
        string[] probes = [.. set, "passwor", "password ", "PASSWORD", "passwörd!", "b", "", "日本語", new string('x', 2000), "zebras", "0"];
        foreach (var probe in probes)
        {
            Assert.True(set.Contains(probe) == list.Contains(probe), $"'{probe}'");
        }
    }

    [Fact]
    public void The_real_blocklist_denies_its_entries_and_not_their_neighbours()
    {
        var policy = new PasswordPolicy(Microsoft.Extensions.Options.Options.Create(new Portcullis.Accounts.AccountOptions()));
        Assert.Contains("too common", policy.Validate("!)@(#*$&%^test123", null) ?? "", StringComparison.Ordinal);
        Assert.Contains("too common", policy.Validate("!@#$%^&*()_+lisa", null) ?? "", StringComparison.Ordinal);
        Assert.Null(policy.Validate("!)@(#*$&%^test12x", null));
        Assert.Null(policy.Validate("!@#$%^&*()_+lisb", null));
    }
}
