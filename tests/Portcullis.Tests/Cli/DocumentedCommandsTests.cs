using System.Text.RegularExpressions;
using Portcullis.Cli;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// Issue 20: every <c>portcullis …</c> command the README, the docs, the start-up hint and <c>doctor</c> print exists, with
/// the options they show — so a pasted command never ends in "unknown command".
/// </summary>
public sealed partial class DocumentedCommandsTests
{
    [Fact]
    public async Task Every_printed_portcullis_command_and_option_exists()
    {
        var sources = Directory.EnumerateFiles(Path.Combine(Repository.Root, "docs"), "*.md", SearchOption.AllDirectories)
            .Append(Path.Combine(Repository.Root, "README.md"))
            .Concat(Directory.EnumerateFiles(Path.Combine(Repository.Root, "src", "Portcullis"), "*.cs", SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
            .ToList();

        var uses = new List<(string Where, string[] Words, string[] Options)>();
        foreach (var file in sources)
        {
            var lineNumber = 0;
            foreach (var line in File.ReadLines(file))
            {
                lineNumber++;
                foreach (Match m in Invocation().Matches(line))
                {
                    var options = OptionName().Matches(m.Groups["rest"].Value).Select(o => o.Value).ToArray();
                    uses.Add(($"{Path.GetRelativePath(Repository.Root, file)}:{lineNumber}: {m.Value.Trim()}", m.Groups["words"].Value.Split(' '), options));
                }
            }
        }

        Assert.True(uses.Count >= 20, $"found only {uses.Count} printed commands; did the pattern break?");
        Assert.Contains(uses, u => u.Words is ["admin", "create", ..]); // the start-up hint (Cli/StartupBanner.cs)

        var help = new Dictionary<string, (int Code, string Text)>();
        var problems = new List<string>();
        foreach (var (where, words, options) in uses)
        {
            var top = await HelpAsync(help, [words[0]]);
            if (top.Code != CliApp.Ok)
            {
                problems.Add($"{where}: no command '{words[0]}'");
                continue;
            }

            var path = new List<string> { words[0] };
            var text = top.Text;
            if (words.Length > 1 && Subcommands(text).Contains(words[1]))
            {
                path.Add(words[1]);
                text = (await HelpAsync(help, path)).Text;
            }
            else if (Subcommands(text).Count > 0)
            {
                problems.Add($"{where}: '{words[0]}' needs one of {string.Join(", ", Subcommands(text))}");
                continue;
            }

            foreach (var option in options.Where(o => o is not "--help" && !text.Contains(o, StringComparison.Ordinal)))
            {
                problems.Add($"{where}: 'portcullis {string.Join(' ', path)}' has no option {option}");
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems.Distinct()));
    }

    private static async Task<(int Code, string Text)> HelpAsync(Dictionary<string, (int, string)> cache, IReadOnlyList<string> path)
    {
        var key = string.Join(' ', path);
        if (!cache.TryGetValue(key, out var result))
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var code = await CliApp.RunAsync([.. path, "--help"], new StringReader(""), stdout, stderr);
            result = cache[key] = (code, stdout + stderr.ToString());
        }

        return result;
    }

    /// <summary>The names under "Commands:" in a help text.</summary>
    private static List<string> Subcommands(string help)
    {
        var index = help.IndexOf("Commands:", StringComparison.Ordinal);
        return index < 0 ? [] : [.. CommandLine().Matches(help[index..]).Select(m => m.Groups[1].Value)];
    }

    // `portcullis users list --search x`, as printed in prose and code blocks; not `portcullis.db`, `/portcullis/…`, or
    // the database and role names in pg_hba lines (`hostssl portcullis portcullis_app …`).
    [GeneratedRegex(@"(?<![\w/.-])portcullis (?!portcullis\b)(?<words>[a-z][a-z-]*(?![\w])(?: [a-z][a-z-]*(?![\w]))?)(?<rest>[^`|;&)\n]*)")]
    private static partial Regex Invocation();

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z-]*")]
    private static partial Regex OptionName();

    [GeneratedRegex(@"^\s{2}([a-z][a-z-]*)\b", RegexOptions.Multiline)]
    private static partial Regex CommandLine();
}
