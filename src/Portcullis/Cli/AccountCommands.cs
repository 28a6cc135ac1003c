using System.CommandLine;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Admin;
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
        AddAdministration(users, io);
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

            if (outcome.Busy)
            {
                await io.Error.WriteLineAsync("error: password hashing is busy; try again.");
                return CliApp.Failed;
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

    private static readonly Option<string?> Search = new("--search") { Description = "Only users whose name or e-mail contains this." };
    private static readonly Option<int> Limit = new("--limit") { Description = "At most this many users (1-200).", DefaultValueFactory = _ => 50 };
    private static readonly Option<string> Role = new("--role") { Description = "The role.", Required = true };

    private static Command SetDisabled(CliIo io, string name, bool disabled) =>
        UserChange(io, name, disabled ? "Disable a user: their sessions end and their tokens stop working." : "Enable a disabled user.",
            (admin, user) => admin.SetDisabledAsync(user.Id, disabled, CancellationToken.None),
            user => $"User '{user.UserName}' {(disabled ? "disabled" : "enabled")}.");

    internal static void AddAdministration(Command users, CliIo io)
    {
        var list = new Command("list", "List users (by username).");
        list.Options.Add(Search);
        list.Options.Add(Limit);
        list.Options.Add(CliApp.Json);
        list.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var limit = parse.GetValue(Limit);
            if (limit is < 1 or > UserAdministration.MaxPageSize)
            {
                await io.Error.WriteLineAsync($"error: --limit is 1 to {UserAdministration.MaxPageSize}.");
                return CliApp.Invalid;
            }

            var page = await services.GetRequiredService<UserAdministration>().ListAsync(parse.GetValue(Search), null, limit, ct);
            await PrintAsync(io, parse, page.Items, u => $"{u.Id}  {u.Username,-24} {u.Email,-32} {(u.Disabled ? "disabled" : "enabled "),-8} {string.Join(",", u.Roles)}");
            return CliApp.Ok;
        }));

        var show = new Command("show", "Show one user.");
        show.Options.Add(Username);
        show.Options.Add(CliApp.Json);
        show.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var admin = services.GetRequiredService<UserAdministration>();
            if (await FindAsync(services, parse) is not { } user)
            {
                await io.Error.WriteLineAsync("error: no such user.");
                return CliApp.NotFound;
            }

            var view = await admin.ViewAsync(user);
            await PrintAsync(io, parse, [view], u => $"id: {u.Id}\nusername: {u.Username}\nemail: {u.Email}\ncreated: {u.Created:u}\ndisabled: {u.Disabled}\nroles: {string.Join(", ", u.Roles)}");
            return CliApp.Ok;
        }));

        var delete = UserChange(io, "delete", "Delete a user; their sessions end and their tokens stop working.",
            (admin, user) => admin.DeleteAsync(user.Id, CancellationToken.None), user => $"User '{user.UserName}' deleted.");
        var grant = UserChange(io, "grant", "Give a user a role.",
            (admin, user) => admin.AssignRoleAsync(user.Id, user.Role!, CancellationToken.None), user => $"User '{user.UserName}' now has the role '{user.Role}'.", withRole: true);
        var revoke = UserChange(io, "revoke", "Take a role from a user.",
            (admin, user) => admin.RemoveRoleAsync(user.Id, user.Role!, CancellationToken.None), user => $"User '{user.UserName}' no longer has the role '{user.Role}'.", withRole: true);
        var requireChange = UserChange(io, "require-password-change", "End a user's sessions; they must choose a new password before signing in again.",
            (admin, user) => admin.RequirePasswordChangeAsync(user.Id, CancellationToken.None), user => $"User '{user.UserName}' must change their password.");
        foreach (var command in new[] { list, show, delete, grant, revoke, requireChange })
        {
            users.Subcommands.Add(command);
        }
    }

    private sealed record Target(Guid Id, string? UserName, string? Role);

    private static Command UserChange(CliIo io, string name, string description,
        Func<UserAdministration, Target, Task<UserAdministration.Outcome>> change, Func<Target, string> done, bool withRole = false)
    {
        var command = new Command(name, description);
        command.Options.Add(Username);
        if (withRole)
        {
            command.Options.Add(Role);
        }

        command.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            if (await FindAsync(services, parse) is not { } user)
            {
                await io.Error.WriteLineAsync("error: no such user.");
                return CliApp.NotFound;
            }

            var target = new Target(user.Id, user.UserName, withRole ? parse.GetValue(Role) : null);
            switch (await change(services.GetRequiredService<UserAdministration>(), target))
            {
                case UserAdministration.Outcome.Done:
                    await io.Out.WriteLineAsync(done(target));
                    return CliApp.Ok;
                case UserAdministration.Outcome.LastAdmin:
                    await io.Error.WriteLineAsync("error: this would leave no enabled administrator.");
                    return CliApp.Invalid;
                case UserAdministration.Outcome.UnknownRole:
                    await io.Error.WriteLineAsync("error: no such role.");
                    return CliApp.NotFound;
                default:
                    await io.Error.WriteLineAsync("error: no such user.");
                    return CliApp.NotFound;
            }
        }));
        return command;
    }

    private static Task<User?> FindAsync(IServiceProvider services, ParseResult parse) =>
        services.GetRequiredService<UserManager<User>>().FindByNameAsync(parse.GetValue(Username)!);

    internal static async Task PrintAsync<T>(CliIo io, ParseResult parse, IEnumerable<T> items, Func<T, string> line)
    {
        if (parse.GetValue(CliApp.Json))
        {
            await io.Out.WriteLineAsync(JsonSerializer.Serialize(items, CliApp.JsonOutput));
            return;
        }

        foreach (var item in items)
        {
            await io.Out.WriteLineAsync(line(item));
        }
    }
}
