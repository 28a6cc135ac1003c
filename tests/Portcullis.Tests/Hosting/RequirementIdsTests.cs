using Portcullis.Tests.Infrastructure;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// Issue 21: a requirement or attack-case id cited in the code or a test name must be defined in
/// docs/security-requirements.md (a table row whose first cell is the id), so every citation resolves inside the
/// repository. The scan covers every *.cs file under src/ and tests/.
/// </summary>
public sealed partial class RequirementIdsTests
{
    private const string Document = "docs/security-requirements.md";

    /// <summary>This file's own examples are not citations.</summary>
    private const string ThisFile = "RequirementIdsTests.cs";

    private const string RequirementPrefixes = "NET|TLS|HDR|AUTH|PWD|JWT|SES|OA|AZ|VAL|DATA|RATE|LOG|ERR|CFG|DEP";

    /// <summary>
    /// <c>NET-07</c>, <c>NET07</c> (test names), <c>NET-08..16</c>, <c>NET-03/04/15</c>. Upper case only, so
    /// <c>Tls12</c> or <c>net10.0</c> are not ids.
    /// </summary>
    [GeneratedRegex(@"(?<![A-Za-z0-9])(?<prefix>" + RequirementPrefixes + @")-?(?<first>\d{2})(?<more>(?:(?:\.\.|/)(?:\k<prefix>-?)?\d{2}(?!\d))*)(?![0-9A-Za-z])")]
    private static partial Regex RequirementId();

    [GeneratedRegex(@"(?<separator>\.\.|/)(?:[A-Z]+-?)?(?<number>\d{2})")]
    private static partial Regex RequirementContinuation();

    /// <summary>
    /// Attack cases: one letter of a matrix group and two digits (<c>J13</c>, <c>J01–J13</c>). Not followed by
    /// <c>.digit</c>, so the <c>V11</c> of <c>ASVS V11.2.3</c> is not a case.
    /// </summary>
    [GeneratedRegex(@"(?<![A-Za-z0-9])(?<letter>[ACDFHJKLOPRSTVZ])(?<first>\d{2})(?:\s*(?:\.\.|–|—|-)\s*\k<letter>?(?<last>\d{2}))?(?![0-9A-Za-z])(?!\.\d)")]
    private static partial Regex CaseId();

    /// <summary><c>ASVS V11.2.3</c>, also <c>ASVS V7.4.1, V7.4.2</c>.</summary>
    [GeneratedRegex(@"ASVS\s+(?<id>V\d+\.\d+(?:\.\d+)?)(?:\s*(?:,|/|and)\s*(?<id>V\d+\.\d+(?:\.\d+)?))*")]
    private static partial Regex AsvsId();

    /// <summary>A definition: a table row whose first cell is exactly one id.</summary>
    [GeneratedRegex(@"^\|\s*(?<id>(?:" + RequirementPrefixes + @")-\d{2}|[A-Z]\d{2}|ASVS V\d+\.\d+(?:\.\d+)?)\s*\|", RegexOptions.Multiline)]
    private static partial Regex DefinedId();

    [Fact]
    public async Task Every_id_cited_in_src_and_tests_is_defined_in_docs_security_requirements()
    {
        var root = Repository.Root;
        var defined = DefinedIds(await File.ReadAllTextAsync(Path.Combine(root, Document)));

        var cited = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var path in SourceFiles(root))
        {
            var relative = Path.GetRelativePath(root, path).Replace('\\', '/');
            foreach (var id in CitedIds(await File.ReadAllTextAsync(path)))
            {
                if (!cited.TryGetValue(id, out var files))
                {
                    cited[id] = files = new SortedSet<string>(StringComparer.Ordinal);
                }

                files.Add(relative);
            }
        }

        // Sanity: the scan really saw the code and the document (a broken scan must not pass as "all defined").
        Assert.True(cited.Count >= 50, $"Only {cited.Count} ids found under src/ and tests/.");
        Assert.True(defined.Count >= 100, $"Only {defined.Count} ids defined in {Document}.");

        var missing = cited.Where(c => !defined.Contains(c.Key))
            .Select(c => $"{c.Key} (cited in {string.Join(", ", c.Value)})")
            .ToList();
        Assert.True(missing.Count == 0,
            $"{missing.Count} id(s) cited in the code are not defined in {Document} (add a table row whose first cell is the id):"
            + Environment.NewLine + string.Join(Environment.NewLine, missing));
    }

    [Fact]
    public async Task Every_id_the_document_uses_is_defined_in_it_once()
    {
        var text = await File.ReadAllTextAsync(Path.Combine(Repository.Root, Document));

        var rows = DefinedId().Matches(text).Select(m => m.Groups["id"].Value).ToList();
        var duplicates = rows.GroupBy(id => id, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "Defined more than once: " + string.Join(", ", duplicates));

        var defined = rows.ToHashSet(StringComparer.Ordinal);
        var undefined = CitedIds(text).Where(id => !defined.Contains(id)).Order(StringComparer.Ordinal).ToList();
        Assert.True(undefined.Count == 0, $"{Document} uses ids it does not define: " + string.Join(", ", undefined));
    }

    [Fact]
    public void The_scanner_reads_every_written_form_and_ignores_look_alikes()
    {
        // The patterns are proven here so an empty "missing" list above means "all defined", not "a broken regex".
        Assert.Equal(["NET-07"], CitedIds("Kestrel cipher suites (NET-07)."));
        Assert.Equal(["J04", "NET-08"], CitedIds("public async Task J04_NET08_iat_one_day_in_the_future()"));
        Assert.Equal(["RATE-03"], CitedIds("public async Task RATE03_path_variants()"));
        Assert.Equal(["V09", "V14"], CitedIds("public async Task V09_V14_bad_paging_parameters_are_400()"));
        Assert.Equal(["NET-03", "NET-04", "NET-15"], CitedIds("(REQUIREMENTS NET-03/04/15)"));
        Assert.Equal(["NET-08", "NET-09", "NET-10"], CitedIds("hardened (NET-08..10)"));
        Assert.Equal(["J01", "J02", "J03"], CitedIds("TEST_MATRIX J01–J03"));
        Assert.Equal(["AZ-01", "Z01"], CitedIds("Z01 / AZ-01: every endpoint"));
        Assert.Equal(["ASVS V11.2.3"], CitedIds("RSA with at least 3072 bits (ASVS V11.2.3)."));
        Assert.Equal(["ASVS V7.4.1", "ASVS V7.4.2"], CitedIds("(ASVS V7.4.1, V7.4.2)"));

        Assert.Empty(CitedIds("SslProtocols.Tls12 | SslProtocols.Tls13; net10.0; TLS 1.2; V3; P-256; HS256; ES256; SHA512"));
        Assert.Empty(CitedIds("UTF-16, NU1901, AES128, guid 3f2a-A10B-77, base64 +T97U/D47g, v2.0.1"));

        Assert.Equal(["ASVS V7.1.1", "J13", "NET-07"],
            DefinedIds("| ID | Requirement |\n|---|---|\n| NET-07 | x |\n| J13 | y | z |\n| ASVS V7.1.1 | w |\nNET-08 in prose\n").Order(StringComparer.Ordinal));
    }

    /// <summary>Every id a text cites, ranges and lists expanded, normalised to the document's spelling.</summary>
    private static SortedSet<string> CitedIds(string text)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match match in RequirementId().Matches(text))
        {
            var prefix = match.Groups["prefix"].Value;
            var numbers = new List<int> { Number(match.Groups["first"].Value) };
            foreach (Match next in RequirementContinuation().Matches(match.Groups["more"].Value))
            {
                var number = Number(next.Groups["number"].Value);
                numbers.AddRange(next.Groups["separator"].Value == ".."
                    ? Enumerable.Range(numbers[^1] + 1, Math.Max(0, number - numbers[^1]))
                    : [number]);
            }

            ids.UnionWith(numbers.Select(n => $"{prefix}-{n:00}"));
        }

        foreach (Match match in CaseId().Matches(text))
        {
            var letter = match.Groups["letter"].Value;
            var first = Number(match.Groups["first"].Value);
            var last = match.Groups["last"].Success ? Number(match.Groups["last"].Value) : first;
            ids.UnionWith(Enumerable.Range(first, Math.Max(1, last - first + 1)).Select(n => $"{letter}{n:00}"));
        }

        foreach (Match match in AsvsId().Matches(text))
        {
            ids.UnionWith(match.Groups["id"].Captures.Select(c => "ASVS " + c.Value));
        }

        return ids;
    }

    private static HashSet<string> DefinedIds(string document) =>
        DefinedId().Matches(document).Select(m => m.Groups["id"].Value).ToHashSet(StringComparer.Ordinal);

    private static int Number(string digits) => int.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);

    private static IEnumerable<string> SourceFiles(string root) =>
        new[] { "src", "tests" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*.cs", SearchOption.AllDirectories))
            .Where(p => !Path.GetRelativePath(root, p).Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)
                .Any(segment => segment is "bin" or "obj"))
            .Where(p => Path.GetFileName(p) != ThisFile);
}
