using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// The README's "Walk-through with curl" runs as pasted: its <c>bash</c> blocks, in order, under <c>bash -euo pipefail</c>
/// (so an undefined variable or a failed <c>curl -f</c> fails the test) against a real server on a free port, from a
/// directory whose <c>./data</c> is the server's data directory, with <c>portcullis</c> on the PATH. Only the address
/// (<c>H=</c>) is changed.
/// </summary>
public sealed partial class ReadmeWalkthroughTests
{
    private const string Section = "## Walk-through with curl";

    [GeneratedRegex(@"^```bash\n(.*?)^```", RegexOptions.Singleline | RegexOptions.Multiline)]
    private static partial Regex BashBlock();

    public static string WalkthroughScript()
    {
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md")).ReplaceLineEndings("\n");
        var start = readme.IndexOf(Section + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"README.md has no '{Section}' section");
        var end = readme.IndexOf("\n## ", start + Section.Length, StringComparison.Ordinal);
        var section = end < 0 ? readme[start..] : readme[start..end];
        var blocks = BashBlock().Matches(section).Select(m => m.Groups[1].Value).ToList();
        Assert.True(blocks.Count >= 2, "the walk-through lost its bash blocks");
        return string.Join("\n", blocks);
    }

    [Fact]
    public async Task The_readme_walkthrough_runs_as_pasted_and_ends_every_session_it_started()
    {
        var script = WalkthroughScript();
        const string Address = "H=https://127.0.0.1:8443;";
        Assert.Contains(Address, script, StringComparison.Ordinal);

        await using var server = await ChildServer.StartAsync();
        var work = Directory.CreateTempSubdirectory("portcullis-readme-").FullName;
        try
        {
            // ./data is the server's data directory (certificate, database), as when `portcullis serve` runs here.
            File.CreateSymbolicLink(Path.Combine(work, "data"), server.DataDirectory);
            var bin = Directory.CreateDirectory(Path.Combine(work, "bin")).FullName;
            var shim = Path.Combine(bin, "portcullis");
            await File.WriteAllTextAsync(shim, $"#!/bin/sh\nexec dotnet '{Path.Combine(AppContext.BaseDirectory, "portcullis.dll")}' \"$@\"\n");
            File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            // The final state, for the checks below: the tokens the walk-through holds at its end.
            script = script.Replace(Address, $"H=https://127.0.0.1:{server.Port};", StringComparison.Ordinal)
                + "\necho \"__tokens__ $AT $AT2\"\n";

            var (exit, stdout, stderr) = await RunBashAsync(script, work, bin);

            Assert.True(exit == 0, $"the walk-through failed (exit {exit}):\n{stderr}\n{stdout}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            // The access token of the revoked session, right after the revocation.
            Assert.True(lines.Contains("401"), "no 401 line for the revoked session's access token:\n" + stdout);
            Assert.Contains("\"token_type\":\"Bearer\"", stdout.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.Contains(lines, l => l.Contains("\"username\":\"alice\"", StringComparison.Ordinal) || l.Contains("\"username\": \"alice\"", StringComparison.Ordinal));
            var tokens = Assert.Single(lines, l => l.StartsWith("__tokens__ ", StringComparison.Ordinal)).Split(' ')[1..];
            Assert.Equal(2, tokens.Length);
            Assert.All(tokens, SecretCanary.Suite.Record);

            // Every session it started is over: logout-everywhere and the revocation left no access token working.
            using var http = server.Client();
            foreach (var token in tokens)
            {
                using var me = await http.GetWithTokenAsync("api/me", token);
                Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            }

            // The account and the client it created are there.
            var clients = await server.RunCliAsync("clients", "list", "--json");
            Assert.Contains("billing", clients.Out, StringComparison.Ordinal);
            using var login = await http.PasswordGrantAsync("alice", "correct horse battery staple");
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunBashAsync(string script, string workingDirectory, string bin)
    {
        // From a file, not stdin: a command in the script that reads stdin must not swallow the rest of the script.
        var file = Path.Combine(workingDirectory, "walkthrough.sh");
        await File.WriteAllTextAsync(file, script);
        var info = new ProcessStartInfo("bash")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-euo", "pipefail", file })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
        using var bash = Process.Start(info)!;
        var stdout = bash.StandardOutput.ReadToEndAsync();
        var stderr = bash.StandardError.ReadToEndAsync();
        bash.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await bash.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            bash.Kill(entireProcessTree: true);
            throw;
        }

        return (bash.ExitCode, await stdout, await stderr);
    }
}
