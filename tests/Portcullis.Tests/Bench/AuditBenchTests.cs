using System.Text.Json;
using Portcullis.Bench;
using Portcullis.Cli;

namespace Portcullis.Tests.Bench;

/// <summary>
/// <c>Portcullis.Bench audit</c> (bench/run.sh's audit-cost measurement, issue 4) runs, prints one JSON object with its numbers,
/// and works on its own temporary SQLite file: the configured database and data directory are never touched. Timings
/// are not asserted (performance is measured by bench/, not by tests).
/// </summary>
public sealed class AuditBenchTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-auditbench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<(int Exit, string Out, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        // A configured PostgreSQL database that nothing listens for (port 1): any use of it would fail the command.
        var settings = new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "Postgres",
            ["Storage:ConnectionString"] = "Host=127.0.0.1;Port=1;Database=portcullis;Username=x;Timeout=1",
        };
        var exit = await BenchApp.RunAsync([.. args, "--data-dir", _dir], new StringReader(""), output, error, settings);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Audit_prints_json_measurements_from_a_temporary_database_and_leaves_the_configured_one_alone()
    {
        var (exit, output, error) = await RunAsync("audit", "--count", "10", "--block", "5");
        Assert.True(exit == CliApp.Ok, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var result = Assert.Single(lines); // only the JSON line: no log output on stdout
        var json = JsonDocument.Parse(result).RootElement;
        Assert.Equal(10, json.GetProperty("count").GetInt32());
        Assert.Equal(1, json.GetProperty("auditRowsPerLogin").GetInt32());
        foreach (var name in new[]
        {
            "withoutAuditMedianUs", "withAuditMedianUs", "auditMeanUs", "auditMeanCi95Us", "auditCpuUs", "auditCpuCi95Us", "recordMedianUs", "auditDirectUs",
            "failedLoginWriteMeanUs", "failedLoginWriteCpuUs", "sealPerEventCpuUs",
        })
        {
            Assert.Equal(JsonValueKind.Number, json.GetProperty(name).ValueKind);
        }

        Assert.Equal(10, json.GetProperty("failedLoginWriteCount").GetInt32());
        // Every audited login (100 warm-up + 10) and failed login (25 warm-up + 10) was written, then sealed.
        Assert.True(json.GetProperty("sealedEvents").GetInt64() >= 145, result);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData("5", "2")]
    [InlineData("20", "11")] // one block pair: no spread, no interval
    public async Task Audit_refuses_counts_out_of_range(string count, string block)
    {
        var (exit, output, error) = await RunAsync("audit", "--count", count, "--block", block);
        Assert.Equal(CliApp.Usage, exit);
        Assert.Contains("--count must be 10-100000 and --block 1-1000 (at most half of --count)", error, StringComparison.Ordinal);
        Assert.Empty(output);
    }
}
