using System.CommandLine;

namespace Portcullis.Cli;

/// <summary><c>migrate</c>: applies database migrations (start-up does it too when Storage:AutoMigrate is on).</summary>
public static class MigrateCommand
{
    public static Command Create(CliIo io)
    {
        var command = new Command("migrate", "Apply database migrations.");
        command.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async _ =>
        {
            await io.Out.WriteLineAsync("The database is up to date.");
            return CliApp.Ok;
        }));
        return command;
    }
}
