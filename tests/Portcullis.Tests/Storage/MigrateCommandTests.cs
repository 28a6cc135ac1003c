using Portcullis.Cli;

namespace Portcullis.Tests.Storage;

/// <summary><c>portcullis migrate --script</c>: idempotent SQL for operators who apply schema changes themselves.</summary>
public sealed class MigrateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-migrate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

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
    public async Task Postgres_without_a_connection_string_is_refused_with_what_to_set()
    {
        var (exit, _, error) = await RunAsync(new() { ["Storage:Provider"] = "Postgres" }, "migrate");
        Assert.Equal(CliApp.Failed, exit);
        Assert.Contains("Storage:ConnectionString must be set", error, StringComparison.Ordinal);
    }
}
