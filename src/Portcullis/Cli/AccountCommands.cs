using System.CommandLine;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Storage;

namespace Portcullis.Cli;

/// <summary><c>admin create</c> and <c>users add|disable|enable</c>. Passwords come from a prompt or stdin only.</summary>
public static class AccountCommands
{
    private static readonly Option<string> Username = new("--username") { Description = "The username.", Required = true };
    private static readonly Option<string?> Email = new("--email") { Description = "The e-mail address. Default <username>@localhost.invalid." };
    private static readonly Option<bool> PasswordStdin = new("--password-stdin") { Description = "Read the password from standard input." };

    public static Command CreateAdmin(CliIo io)
    {
        var admin = new Command("admin", "Administrator accounts.");
        var create = new Command("create", "Create an administrator. There is never a default one.");
        AddAccountOptions(create);
        create.SetAction((parse, _) => CreateAccountAsync(parse, io, [Roles.Admin, Roles.User]));
        admin.Subcommands.Add(create);
        return admin;
    }

    public static Command CreateUsers(CliIo io)
    {
        var users = new Command("users", "User accounts.");
        var add = new Command("add", "Create a user with the 'user' role.");
        AddAccountOptions(add);
        add.SetAction((parse, _) => CreateAccountAsync(parse, io, [Roles.User]));
        users.Subcommands.Add(add);
        users.Subcommands.Add(SetDisabled(io, "disable", true));
        users.Subcommands.Add(SetDisabled(io, "enable", false));
        return users;
    }

    private static void AddAccountOptions(Command command)
    {
        command.Options.Add(Username);
        command.Options.Add(Email);
        command.Options.Add(PasswordStdin);
        command.Options.Add(CliApp.Json);
    }

    private static Task<int> CreateAccountAsync(ParseResult parse, CliIo io, string[] roles) =>
        CliApp.WithServicesAsync(parse, io, async services =>
        {
            var username = parse.GetValue(Username)!;
            var email = parse.GetValue(Email) ?? $"{UsernameRules.Key(username)}@localhost.invalid";
            var password = await io.ReadSecretAsync(parse.GetValue(PasswordStdin), "Password: ");
            if (string.IsNullOrEmpty(password))
            {
                await io.Error.WriteLineAsync("error: no password given (use the prompt or --password-stdin).");
                return CliApp.Invalid;
            }

            var outcome = await services.GetRequiredService<AccountCreator>().CreateAsync(username, email, password, roles, CancellationToken.None);
            if (outcome.Errors is { } errors)
            {
                foreach (var (field, messages) in errors)
                {
                    await io.Error.WriteLineAsync($"error: {field}: {string.Join(" ", messages)}");
                }

                return CliApp.Invalid;
            }

            if (outcome.User is not { } user)
            {
                await io.Error.WriteLineAsync("error: the username or e-mail address is not available.");
                return CliApp.Invalid;
            }

            await io.Out.WriteLineAsync(parse.GetValue(CliApp.Json)
                ? JsonSerializer.Serialize(new { id = user.Id, username = user.UserName, email = user.Email, roles })
                : $"Created {string.Join(", ", roles)} '{user.UserName}' ({user.Id}).");
            return CliApp.Ok;
        });

    private static Command SetDisabled(CliIo io, string name, bool disabled)
    {
        var command = new Command(name, disabled ? "Disable a user: their sessions end and their tokens stop working." : "Enable a disabled user.");
        command.Options.Add(Username);
        command.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var users = services.GetRequiredService<UserManager<User>>();
            if (await users.FindByNameAsync(parse.GetValue(Username)!) is not { } user)
            {
                await io.Error.WriteLineAsync("error: no such user.");
                return CliApp.NotFound;
            }

            await services.GetRequiredService<SessionTerminator>().EndAllSessionsAsync(user, () =>
            {
                user.IsDisabled = disabled;
                return Task.CompletedTask;
            }, CancellationToken.None);
            await io.Out.WriteLineAsync($"User '{user.UserName}' {(disabled ? "disabled" : "enabled")}.");
            return CliApp.Ok;
        }));
        return command;
    }
}
