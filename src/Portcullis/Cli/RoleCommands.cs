using System.CommandLine;
using Portcullis.Admin;

namespace Portcullis.Cli;

/// <summary><c>roles list|create|update|delete</c>: custom roles as named sets of catalogue permissions.</summary>
public static class RoleCommands
{
    private static readonly Option<string> Name = new("--name") { Description = "The role name.", Required = true };
    private static readonly Option<string> PermissionList = new("--permissions") { Description = "Space-separated permissions from docs/permissions.md.", Required = true };

    public static Command Create(CliIo io)
    {
        var roles = new Command("roles", "Roles and their permissions.");

        var list = new Command("list", "List roles.");
        list.Options.Add(CliApp.Json);
        list.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var all = await services.GetRequiredService<RoleAdministration>().ListAsync(ct);
            await AccountCommands.PrintAsync(io, parse, all, r => $"{r.Name,-20} {(r.BuiltIn ? "built-in" : "custom  ")} {string.Join(" ", r.Permissions)}");
            return CliApp.Ok;
        }));
        roles.Subcommands.Add(list);

        foreach (var (verb, description) in new[] { ("create", "Create a role."), ("update", "Replace a role's permissions."), ("delete", "Delete a role (its holders lose it at once).") })
        {
            var command = new Command(verb, description);
            command.Options.Add(Name);
            if (verb != "delete")
            {
                command.Options.Add(PermissionList);
            }

            command.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
            {
                var admin = services.GetRequiredService<RoleAdministration>();
                var name = parse.GetValue(Name)!;
                var permissions = verb == "delete" ? [] : parse.GetValue(PermissionList)!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (RoleAdministration.Validate(verb == "create" ? name : null, permissions) is { } errors)
                {
                    foreach (var (field, messages) in errors)
                    {
                        await io.Error.WriteLineAsync($"error: {field}: {string.Join(" ", messages)}");
                    }

                    return CliApp.Invalid;
                }

                var outcome = verb switch
                {
                    "create" => await admin.CreateAsync(name, permissions, ct),
                    "update" => await admin.UpdateAsync(name, permissions, ct),
                    _ => await admin.DeleteAsync(name, ct),
                };
                switch (outcome)
                {
                    case RoleAdministration.Outcome.Done:
                        await io.Out.WriteLineAsync($"Role '{name}' {verb}d.");
                        return CliApp.Ok;
                    case RoleAdministration.Outcome.NotFound:
                        await io.Error.WriteLineAsync("error: no such role.");
                        return CliApp.NotFound;
                    case RoleAdministration.Outcome.BuiltIn:
                        await io.Error.WriteLineAsync("error: built-in roles cannot be changed.");
                        return CliApp.Invalid;
                    default:
                        await io.Error.WriteLineAsync("error: a role with this name exists.");
                        return CliApp.Invalid;
                }
            }));
            roles.Subcommands.Add(command);
        }

        return roles;
    }
}
