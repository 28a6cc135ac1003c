using System.CommandLine;
using Portcullis.Cli;

namespace Portcullis.Bench;

/// <summary>
/// <c>Portcullis.Bench</c>: the measurements behind bench/run.sh, bench/scale.sh and bench/ratelimit-memory.sh. It
/// references the product and runs its real services with the product's configuration (<c>--data-dir</c>,
/// <c>Portcullis__Section__Key</c>), so nothing here is a copy of product code; the product carries none of it.
/// Exit codes as the product's CLI: 0 success, 1 failure, 2 usage error, 4 invalid input.
/// </summary>
public static class BenchApp
{
    /// <param name="settings">Configuration for an embedding host (the tests' database), below command-line options.</param>
    public static async Task<int> RunAsync(
        string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var io = new CliIo(stdin, stdout, stderr) { Settings = settings };
        var root = new RootCommand("Portcullis benchmarks: measurements for bench/*.sh, run against the real product code.");
        root.Options.Add(CliApp.DataDir);
        root.Subcommands.Add(HashBench.Create(io));
        root.Subcommands.Add(RateLimitMemoryBench.Create(io));
        root.Subcommands.Add(SeedCommand.Create(io));
        root.Subcommands.Add(AuditBench.Create(io));
        root.Subcommands.Add(ServeWithoutRateLimits.Create(io));
        var parse = root.Parse(args);
        return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    /// <summary>The median of the bench commands' samples (NaN when there are none).</summary>
    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
