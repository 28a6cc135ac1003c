using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Audit;
using Portcullis.Cli;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Audit;

/// <summary>Retention: <c>audit prune</c> removes a prefix of the chain, leaves an anchor event, and verify still passes.</summary>
public sealed class AuditRetentionTests
{
    private static async Task<(PortcullisServer Server, DateTimeOffset Cutoff, int OldCount)> ServerWithOldAndNewEventsAsync()
    {
        var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        await http.NewUserAsync("old");
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var cutoff = await db.AuditEvents.MaxAsync(e => e.Timestamp) + TimeSpan.FromMilliseconds(1);
        var old = await db.AuditEvents.CountAsync();
        await Task.Delay(50);
        await http.NewUserAsync("new");
        return (server, cutoff, old);
    }

    /// <summary>The CLI as the database owner would run it (on SQLite there is no other role).</summary>
    private static async Task<PortcullisServer.CliResult> RunAsOwnerAsync(PortcullisServer server, params string[] args)
    {
        var settings = await TestDatabase.SettingsForAsync(server.DataDirectory);
        if (TestDatabase.IsPostgres)
        {
            settings["Storage:ConnectionString"] = TestDatabase.ConnectionFor(server.DataDirectory, TestDatabase.OwnerConnection);
        }

        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync([.. args, "--data-dir", server.DataDirectory], new StringReader(""), output, error, settings);
        return new PortcullisServer.CliResult(exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task L07_prune_removes_only_older_events_leaves_an_audit_pruned_event_and_verify_still_passes()
    {
        var (server, cutoff, oldCount) = await ServerWithOldAndNewEventsAsync();
        await using (server)
        {
            if (TestDatabase.IsPostgres)
            {
                // The application role is refused (L07), and nothing is removed.
                var refused = await server.RunCliAsync(null, "audit", "prune", "--before", cutoff.ToString("O"));
                Assert.Equal(CliApp.Failed, refused.ExitCode);
                Assert.Contains("owner", refused.Error, StringComparison.Ordinal);
            }

            var pruned = await RunAsOwnerAsync(server, "audit", "prune", "--before", cutoff.ToString("O"));
            Assert.True(pruned.ExitCode == CliApp.Ok, pruned.Error);
            Assert.Contains($"Pruned {oldCount} events", pruned.Out, StringComparison.Ordinal);

            await using var scope = server.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            Assert.False(await db.AuditEvents.AnyAsync(e => e.Timestamp < cutoff));
            Assert.True(await db.AuditEvents.AnyAsync(e => e.Timestamp >= cutoff && e.Name == "user_created"));
            var record = await db.AuditEvents.AsNoTracking().SingleAsync(e => e.Name == "audit_pruned");
            Assert.Equal("operator", record.Actor);
            var details = System.Text.Json.JsonDocument.Parse(record.Details!).RootElement;
            Assert.Equal(oldCount, details.GetProperty("count").GetInt64());
            Assert.Equal(1, details.GetProperty("firstSequence").GetInt64());

            var verify = await server.RunCliAsync(null, "audit", "verify");
            Assert.True(verify.ExitCode == CliApp.Ok, verify.Out);

            // Pruning again with the same date finds nothing more; a date in the future is refused.
            Assert.Contains("Nothing to prune", (await RunAsOwnerAsync(server, "audit", "prune", "--before", cutoff.ToString("O"))).Out, StringComparison.Ordinal);
            Assert.Equal(CliApp.Invalid, (await RunAsOwnerAsync(server, "audit", "prune", "--before", DateTimeOffset.UtcNow.AddDays(1).ToString("O"))).ExitCode);
            Assert.Equal(CliApp.Ok, (await server.RunCliAsync(null, "audit", "verify")).ExitCode);
        }
    }

    [Fact]
    public async Task Removing_the_oldest_events_without_prune_is_detected_as_tampering()
    {
        var (server, _, _) = await ServerWithOldAndNewEventsAsync();
        await using (server)
        {
            Assert.Equal(CliApp.Ok, (await server.RunCliAsync(null, "audit", "verify")).ExitCode); // seals everything
            const string Sql = "DELETE FROM \"AuditEvents\" WHERE \"Id\" IN (SELECT \"EventId\" FROM \"AuditSeals\" WHERE \"Sequence\" <= 2); DELETE FROM \"AuditSeals\" WHERE \"Sequence\" <= 2";
            if (TestDatabase.IsPostgres)
            {
                await using var connection = new Npgsql.NpgsqlConnection(TestDatabase.ConnectionFor(server.DataDirectory, TestDatabase.OwnerConnection));
                await connection.OpenAsync();
                await using var command = new Npgsql.NpgsqlCommand(Sql, connection);
                await command.ExecuteNonQueryAsync();
            }
            else
            {
                await using var scope = server.Services.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<PortcullisDb>().Database.ExecuteSqlRawAsync(Sql);
            }

            var verify = await server.RunCliAsync(null, "audit", "verify");
            Assert.Equal(CliApp.Failed, verify.ExitCode);
            Assert.Contains("no audit_pruned event anchors it", verify.Out, StringComparison.Ordinal);
        }
    }
}
