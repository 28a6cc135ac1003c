using System.Diagnostics;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// <c>scripts/install.sh</c> before it publishes anything (quick): usage, a usage error, and a prefix it will not
/// replace. The whole install — publish, link, the installed <c>portcullis --help</c> — is a step of <c>.ci/run</c>
/// (about a minute of publishing is too much for the suite).
/// </summary>
public sealed class InstallScriptTests
{
    [Fact]
    public async Task Help_prints_the_usage_and_an_unknown_option_is_a_usage_error()
    {
        var help = await RunAsync("--help");
        Assert.Equal(0, help.Exit);
        Assert.Contains("scripts/install.sh [--prefix DIR] [--bin-dir DIR] [--no-ready-to-run]", help.Output, StringComparison.Ordinal);

        var wrong = await RunAsync("--prefx", "/tmp/x");
        Assert.Equal(2, wrong.Exit);
        Assert.Contains("unknown option '--prefx'", wrong.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_prefix_holding_something_else_is_refused_and_left_as_it_was()
    {
        var prefix = Directory.CreateTempSubdirectory("portcullis-install-").FullName;
        try
        {
            var precious = Path.Combine(prefix, "precious.txt");
            await File.WriteAllTextAsync(precious, "keep me");

            var refused = await RunAsync("--prefix", prefix, "--bin-dir", Path.Combine(prefix, "bin"));

            Assert.Equal(1, refused.Exit);
            Assert.Contains("is not empty and holds no earlier install", refused.Output, StringComparison.Ordinal);
            Assert.Equal("keep me", await File.ReadAllTextAsync(precious));
        }
        finally
        {
            Directory.Delete(prefix, recursive: true);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo(Path.Combine(Repository.Root, "scripts", "install.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
