using System.CommandLine;
using System.Text.Json;
using Portcullis.Admin;

namespace Portcullis.Cli;

/// <summary>
/// <c>clients list|add|remove|rotate-secret</c>: services (client credentials) and applications that sign people in
/// (<c>--redirect-uri</c>). A secret is printed once, by the command that makes it; only a hash is stored.
/// </summary>
public static class ClientCommands
{
    private static readonly Option<string> Name = new("--name") { Description = "Display name of the client.", Required = true };
    private static readonly Option<string?> Scopes = new("--scopes") { Description = "Space-separated scopes the client may request." };
    private static readonly Option<string> ClientId = new("--client-id") { Description = "The client id.", Required = true };
    private static readonly Option<string> Type = new("--type") { Description = "confidential (has a secret; the default) or public (a single-page or native app).", DefaultValueFactory = _ => "confidential" };
    private static readonly Option<string[]> RedirectUri = new("--redirect-uri") { Description = "Where sign-in returns (repeatable; compared exactly). Makes the client an application that signs people in.", AllowMultipleArgumentsPerToken = false };
    private static readonly Option<string[]> PostLogoutRedirectUri = new("--post-logout-redirect-uri") { Description = "Where sign-out may return (repeatable)." };
    private static readonly Option<bool> FirstParty = new("--first-party") { Description = "Your own application: no consent screen." };
    private static readonly Option<bool> AllowNoPkce = new("--allow-no-pkce") { Description = "Confidential clients only: PKCE becomes optional, and a nonce is then required (RFC 9700 §2.1.1)." };

    public static Command Create(CliIo io)
    {
        var clients = new Command("clients", "OAuth clients.");

        var list = new Command("list", "List clients (never their secrets).");
        list.Options.Add(CliApp.Json);
        list.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var all = await services.GetRequiredService<ClientAdministration>().ListAsync(ct);
            await AccountCommands.PrintAsync(io, parse, all, c => $"{c.ClientId,-24} {c.Type,-13} {c.Name} grants: {string.Join(" ", c.GrantTypes)} scopes: {string.Join(" ", c.Scopes)}"
                + (c.RedirectUris.Count > 0 ? $" redirect: {string.Join(" ", c.RedirectUris)}" : "") + (c.FirstParty ? " first-party" : ""));
            return CliApp.Ok;
        }));

        var add = new Command("add", "Create a client: a service (client_credentials) or, with --redirect-uri, an application that signs people in (authorization code + PKCE). Prints a secret once.");
        foreach (var option in new Option[] { Name, Scopes, Type, RedirectUri, PostLogoutRedirectUri, FirstParty, AllowNoPkce, CliApp.Json })
        {
            add.Options.Add(option);
        }

        add.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var scopes = (parse.GetValue(Scopes) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var spec = new ClientAdministration.ClientSpec(
                parse.GetValue(Name)!, scopes, parse.GetValue(Type)!, parse.GetValue(RedirectUri) ?? [],
                parse.GetValue(PostLogoutRedirectUri) ?? [], parse.GetValue(FirstParty), parse.GetValue(AllowNoPkce));
            if (ClientAdministration.Validate(spec) is var (field, error))
            {
                await io.Error.WriteLineAsync($"error: {field}: {error}");
                return CliApp.Invalid;
            }

            var created = await services.GetRequiredService<ClientAdministration>().CreateAsync(spec, ct);
            await PrintSecretAsync(io, parse, created);
            return CliApp.Ok;
        }));

        var remove = new Command("remove", "Delete a client; its tokens can no longer be refreshed or issued.");
        remove.Options.Add(ClientId);
        remove.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            switch (await services.GetRequiredService<ClientAdministration>().DeleteAsync(parse.GetValue(ClientId)!, ct))
            {
                case true:
                    await io.Out.WriteLineAsync("Client removed.");
                    return CliApp.Ok;
                case false:
                    await io.Error.WriteLineAsync("error: the built-in client is configuration: set Clients:BuiltInClient=false.");
                    return CliApp.Invalid;
                default:
                    await io.Error.WriteLineAsync("error: no such client.");
                    return CliApp.NotFound;
            }
        }));

        var rotate = new Command("rotate-secret", "Give a confidential client a new secret; the old one stops working. Prints it once.");
        rotate.Options.Add(ClientId);
        rotate.Options.Add(CliApp.Json);
        rotate.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            if (await services.GetRequiredService<ClientAdministration>().RotateSecretAsync(parse.GetValue(ClientId)!, ct) is not { } rotated)
            {
                await io.Error.WriteLineAsync("error: no such confidential client.");
                return CliApp.NotFound;
            }

            await PrintSecretAsync(io, parse, rotated);
            return CliApp.Ok;
        }));

        foreach (var command in new[] { list, add, remove, rotate })
        {
            clients.Subcommands.Add(command);
        }

        return clients;
    }

    private static Task PrintSecretAsync(CliIo io, ParseResult parse, ClientAdministration.ClientSecret secret) =>
        io.Out.WriteLineAsync(parse.GetValue(CliApp.Json)
            ? JsonSerializer.Serialize(secret.Secret is null
                ? new Dictionary<string, string> { ["client_id"] = secret.ClientId }
                : new Dictionary<string, string> { ["client_id"] = secret.ClientId, ["client_secret"] = secret.Secret })
            : secret.Secret is null
                ? $"client_id: {secret.ClientId}\nA public client has no secret."
                : $"client_id: {secret.ClientId}\nclient_secret: {secret.Secret}\nThe secret is shown only now; store it safely.");
}
