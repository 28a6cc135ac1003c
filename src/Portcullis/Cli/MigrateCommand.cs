using System.CommandLine;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Cli;

/// <summary>
/// <c>migrate</c>: applies the configured provider's migrations (SQLite or PostgreSQL), then the start-up data
/// (roles, built-in client, keys). <c>--script</c> prints idempotent SQL instead and touches no database.
/// Start-up migrates too when Storage:AutoMigrate is on (the SQLite default).
/// </summary>
public static class MigrateCommand
{
    private static readonly Option<bool> Script = new("--script")
    {
        Description = "Print idempotent SQL for the configured provider instead of applying it (no database connection).",
    };

    public static Command Create(CliIo io)
    {
        var command = new Command("migrate", "Apply database migrations (or print them as idempotent SQL with --script).");
        command.Options.Add(Script);
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var builder = PortcullisHost.CreateBuilder(io.WithSettings(CliApp.Overrides(parse)));
                await using var app = builder.Build();
                await using var scope = app.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
                var storage = app.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
                if (parse.GetValue(Script))
                {
                    if (!storage.IsPostgres)
                    {
                        // EF Core cannot make SQLite scripts idempotent; SQLite migrates itself at start.
                        await io.Error.WriteLineAsync("error: --script (idempotent SQL) needs Storage:Provider=Postgres; SQLite is migrated by 'portcullis migrate' or at start.");
                        return CliApp.Failed;
                    }

                    var sql = db.GetService<IMigrator>().GenerateScript(options: MigrationsSqlGenerationOptions.Idempotent);
                    await io.Out.WriteLineAsync(sql);
                    return CliApp.Ok;
                }

                if (!storage.IsPostgres)
                {
                    PortcullisHost.EnsurePrivateDirectory(Path.GetFullPath(storage.DataDirectory));
                }

                var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
                if (pending.Count > 0)
                {
                    // One migration at a time, so a long one (a table rewrite) shows where it is.
                    var migrator = db.GetService<IMigrator>();
                    await CliProgress.RunAsync(io, "migrate", "migrations", pending.Count, async progress =>
                    {
                        for (var i = 0; i < pending.Count; i++)
                        {
                            await migrator.MigrateAsync(pending[i], ct);
                            progress(i + 1);
                        }

                        return pending.Count;
                    });
                }

                // Roles, the built-in client and keys: what start-up would create, so the first start needs no DDL rights.
                await PortcullisHost.InitializeAsync(app.Services, ct);
                await io.Out.WriteLineAsync(pending.Count == 0
                    ? "The database is up to date."
                    : $"Applied {pending.Count} migration(s): {string.Join(", ", pending)}. The database is up to date.");
                return CliApp.Ok;
            }
            catch (Exception ex) when (CliErrors.Describe(ex) is { } error)
            {
                return await CliErrors.ReportAsync(io, parse, "error: ", ex, error);
            }
        });
        return command;
    }
}
