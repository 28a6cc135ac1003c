using System.Text.RegularExpressions;
using Portcullis.Access;

namespace Portcullis.Tests.Admin;

public sealed partial class PermissionDocsTests
{
    [Fact]
    public void Docs_permissions_md_lists_exactly_the_catalogue()
    {
        var text = File.ReadAllText(Path.Combine(Infrastructure.Repository.Root, "docs", "permissions.md"));
        var table = text[..text.IndexOf("## Admin API", StringComparison.Ordinal)];
        var documented = Row().Matches(table).Select(m => m.Groups[1].Value).ToHashSet();

        Assert.Equal(Permissions.All.Keys.Order(), documented.Order());
        foreach (var (name, description) in Permissions.All)
        {
            Assert.Contains($"| `{name}` | {description} |", table, StringComparison.Ordinal);
        }
    }

    [GeneratedRegex(@"^\| `([a-z]+:[a-z]+)` \|", RegexOptions.Multiline)]
    private static partial Regex Row();
}
