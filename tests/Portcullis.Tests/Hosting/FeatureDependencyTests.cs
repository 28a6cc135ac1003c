using System.Text.RegularExpressions;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// Feature folders that must not reach into another (issue 21: the Accounts↔Tokens cycle). The token endpoint asks
/// Accounts for the password check, so Accounts may not know Tokens; what both need about the caller (claim names,
/// the user id, revocation state) lives in Access, which knows neither.
/// </summary>
public sealed partial class FeatureDependencyTests
{
    public static TheoryData<string, string> Forbidden => new()
    {
        { "Accounts", "Tokens" },
        { "Access", "Tokens" },
        { "Access", "Accounts" },
    };

    [Theory]
    [MemberData(nameof(Forbidden))]
    public void A_feature_does_not_reference_a_feature_it_must_not_know(string feature, string other)
    {
        var folder = Path.Combine(Repository.Root, "src", "Portcullis", feature);
        Assert.True(Directory.Exists(folder), folder);
        var files = Directory.EnumerateFiles(folder, "*.cs*", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(files);

        // `using Portcullis.Tokens;`, a qualified `Portcullis.Tokens.X`, or `Tokens.X` (which resolves to Portcullis.Tokens
        // inside any Portcullis.* namespace).
        var reference = new Regex($@"\bPortcullis\.{other}\b|(?<![\w.]){other}\.[A-Z]");
        var offending = files
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, line, i)))
            .Where(x => !x.line.TrimStart().StartsWith("///", StringComparison.Ordinal) && !x.line.TrimStart().StartsWith("//", StringComparison.Ordinal))
            .Where(x => reference.IsMatch(x.line))
            .Select(x => $"{Path.GetRelativePath(Repository.Root, x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(offending.Count == 0, $"{feature} references {other}:\n" + string.Join('\n', offending));
    }
}
