using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Storage;

/// <summary>
/// <c>portcullis migrate</c> on the provider of the pass (an empty SQLite data directory, or an empty PostgreSQL
/// database owned by the owner role), and <c>--script</c>: idempotent SQL for operators who apply schema changes
/// themselves, applied to an empty database in the PostgreSQL pass. The refusals touch no database.
/// </summary>
public sealed class MigrateCommandTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-migrate-").FullName;

    public async ValueTask DisposeAsync()
    {
        await TestDatabase.DropAsync(_dir);
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Exit, string Out, string Error)> RunAsync(Dictionary<string, string?> settings, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync([.. args, "--data-dir", _dir], new StringReader(""), output, error, settings);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Migrate_script_on_postgres_prints_idempotent_sql_without_connecting()
    {
        // Port 1 on loopback: nothing listens there, so any connection attempt would fail the command.
        var (exit, output, error) = await RunAsync(
            new() { ["Storage:Provider"] = "Postgres", ["Storage:ConnectionString"] = "Host=127.0.0.1;Port=1;Database=portcullis;Username=x" },
            "migrate", "--script");
        Assert.True(exit == 0, error);
        Assert.Contains("CREATE TABLE IF NOT EXISTS \"__EFMigrationsHistory\"", output, StringComparison.Ordinal);
        Assert.Contains("IF NOT EXISTS(SELECT 1 FROM \"__EFMigrationsHistory\" WHERE \"MigrationId\" =", output, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE \"OpenIddictTokens\"", output, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE \"AspNetUsers\"", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrate_script_on_sqlite_refuses_with_a_message_instead_of_non_idempotent_sql()
    {
        var (exit, output, error) = await RunAsync(new() { ["Storage:Provider"] = "Sqlite" }, "migrate", "--script");
        Assert.Equal(CliApp.Failed, exit);
        Assert.Contains("needs Storage:Provider=Postgres", error, StringComparison.Ordinal);
        Assert.DoesNotContain("CREATE TABLE", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrate_brings_an_empty_store_up_to_date_with_the_start_up_data_and_a_second_run_changes_nothing()
    {
        var settings = await TestDatabase.EmptyStoreAsync(_dir);

        var first = await RunAsync(settings, "migrate");
        Assert.True(first.Exit == 0, first.Error);
        Assert.Contains("Applied", first.Out, StringComparison.Ordinal);
        // Not a terminal: progress is one plain line on standard error, not a bar (Cli/CliProgress.cs).
        Assert.Matches(@"^migrate: (\d+) of \1 migrations \(100%\) in \d\d:\d\d:\d\d\n$", first.Error.ReplaceLineEndings("\n"));

        var second = await RunAsync(settings, "migrate");
        Assert.True(second.Exit == 0, second.Error);
        Assert.Contains("The database is up to date.", second.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("Applied", second.Out, StringComparison.Ordinal);
        Assert.Empty(second.Error);

        var (pending, applied, known, roles) = await SchemaAsync(settings);
        Assert.Empty(pending);
        Assert.Equal(known, applied);
        Assert.Equal(["admin", "user"], roles); // the start-up data, so a first start needs no DDL rights
    }

    [Fact]
    public async Task Migrate_script_applied_twice_to_an_empty_postgres_database_leaves_nothing_to_migrate()
    {
        Assert.SkipUnless(TestDatabase.IsPostgres, "Idempotent SQL is PostgreSQL only; the PostgreSQL pass applies it.");
        var settings = await TestDatabase.EmptyStoreAsync(_dir);
        var (exit, script, error) = await RunAsync(settings, "migrate", "--script");
        Assert.True(exit == 0, error);

        await using (var connection = new NpgsqlConnection(settings["Storage:ConnectionString"]))
        {
            await connection.OpenAsync();
            for (var run = 0; run < 2; run++) // the second run must find everything done and change nothing
            {
                await using var command = new NpgsqlCommand(script, connection);
                await command.ExecuteNonQueryAsync();
            }
        }

        var (pending, applied, known, _) = await SchemaAsync(settings);
        Assert.Empty(pending);
        Assert.Equal(known, applied);
        var migrate = await RunAsync(settings, "migrate");
        Assert.True(migrate.Exit == 0, migrate.Error);
        Assert.Contains("The database is up to date.", migrate.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("Applied", migrate.Out, StringComparison.Ordinal);
    }

    /// <summary>The store as the server would open it: pending, applied and known migrations, and the role names.</summary>
    private async Task<(List<string> Pending, List<string> Applied, List<string> Known, List<string> Roles)> SchemaAsync(Dictionary<string, string?> settings)
    {
        settings = new Dictionary<string, string?>(settings) { ["Storage:DataDirectory"] = _dir };
        await using var app = PortcullisHost.CreateBuilder(settings, "Production").Build();
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Portcullis.Storage.PortcullisDb>();
        var roles = await db.Roles.Select(r => r.Name!).OrderBy(n => n).ToListAsync();
        return ([.. await db.Database.GetPendingMigrationsAsync()], [.. await db.Database.GetAppliedMigrationsAsync()],
            [.. db.Database.GetMigrations()], roles);
    }

    [Fact]
    public async Task Postgres_without_a_connection_string_is_refused_with_what_to_set()
    {
        var (exit, _, error) = await RunAsync(new() { ["Storage:Provider"] = "Postgres" }, "migrate");
        Assert.Equal(CliApp.Configuration, exit);
        Assert.Contains("Storage:ConnectionString must be set", error, StringComparison.Ordinal);
    }
}
