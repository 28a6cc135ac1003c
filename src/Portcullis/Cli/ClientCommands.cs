using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Cli;

/// <summary><c>clients add</c>: a confidential client for the client_credentials grant. The secret is printed once; only a hash is stored.</summary>
public static class ClientCommands
{
    private static readonly Option<string> Name = new("--name") { Description = "Display name of the client.", Required = true };
    private static readonly Option<string?> Scopes = new("--scopes") { Description = "Space-separated scopes the client may request." };

    public static Command Create(CliIo io)
    {
        var clients = new Command("clients", "OAuth clients.");
        var add = new Command("add", "Create a confidential client (client_credentials). Prints the secret once.");
        add.Options.Add(Name);
        add.Options.Add(Scopes);
        add.Options.Add(CliApp.Json);
        add.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
            var scopeManager = services.GetRequiredService<IOpenIddictScopeManager>();
            var scopes = (parse.GetValue(Scopes) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToArray();
            foreach (var scope in scopes)
            {
                if (scope.Length > 64 || !scope.All(c => c is > ' ' and < '\u007f' and not '"' and not '\\'))
                {
                    await io.Error.WriteLineAsync("error: a scope is 1 to 64 printable ASCII characters without quotes or backslashes.");
                    return CliApp.Invalid;
                }
            }

            var clientId = "svc_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12));
            var secret = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
            var descriptor = new OpenIddictApplicationDescriptor
            {
                ClientId = clientId,
                ClientSecret = secret, // OpenIddict stores only a hash of it.
                ClientType = ClientTypes.Confidential,
                DisplayName = parse.GetValue(Name),
                Permissions = { Permissions.Endpoints.Token, Permissions.Endpoints.Revocation, Permissions.Endpoints.Introspection, Permissions.GrantTypes.ClientCredentials },
            };
            foreach (var scope in scopes)
            {
                if (await scopeManager.FindByNameAsync(scope) is null)
                {
                    await scopeManager.CreateAsync(new OpenIddictScopeDescriptor { Name = scope });
                }

                descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
            }

            await applications.CreateAsync(descriptor);
            await io.Out.WriteLineAsync(parse.GetValue(CliApp.Json)
                ? JsonSerializer.Serialize(new Dictionary<string, string> { ["client_id"] = clientId, ["client_secret"] = secret })
                : $"client_id: {clientId}\nclient_secret: {secret}\nThe secret is shown only now; store it safely.");
            return CliApp.Ok;
        }));
        clients.Subcommands.Add(add);
        return clients;
    }
}
