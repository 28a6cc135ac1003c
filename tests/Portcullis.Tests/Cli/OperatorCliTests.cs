using System.Net;
using System.Text.Json;
using Portcullis.Cli;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>The operator CLI against the same database as a running server; exit codes as documented.</summary>
public sealed class OperatorCliTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task Admin_create_reads_the_password_from_stdin_only()
    {
        var name = ClientFlows.UniqueName("ops");
        var viaArgv = await Server.RunCliAsync("", "admin", "create", "--username", name, "--password", ClientFlows.Password);
        Assert.NotEqual(CliApp.Ok, viaArgv.ExitCode);

        var empty = await Server.RunCliAsync("", "admin", "create", "--username", name, "--password-stdin");
        Assert.Equal(CliApp.Invalid, empty.ExitCode);

        var weak = await Server.RunCliAsync("short-secret\n", "admin", "create", "--username", name, "--password-stdin");
        Assert.Equal(CliApp.Invalid, weak.ExitCode);
        Assert.DoesNotContain("short-secret", weak.Error + weak.Out, StringComparison.Ordinal);

        var shown = await Server.RunCliAsync("", "users", "show", "--username", name);
        Assert.Equal(CliApp.NotFound, shown.ExitCode);

        var ok = await Server.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", name, "--password-stdin");
        Assert.Equal(CliApp.Ok, ok.ExitCode);
        Assert.DoesNotContain(ClientFlows.Password, ok.Out + ok.Error, StringComparison.Ordinal);
        var tokens = await fixture.Client.LoginAsync(name);
        using var users = await fixture.Client.GetWithTokenAsync("api/admin/users?limit=1", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.OK, users.StatusCode);
    }

    [Fact]
    public async Task Users_list_show_grant_revoke_and_delete_with_json_output()
    {
        var (id, name, tokens) = await fixture.Client.NewUserAsync("cliuser");

        var list = await Server.RunCliAsync("", "users", "list", "--search", name, "--json");
        Assert.Equal(CliApp.Ok, list.ExitCode);
        var listed = JsonDocument.Parse(list.Out).RootElement.EnumerateArray().Single();
        Assert.Equal(id, listed.GetProperty("id").GetGuid());
        Assert.DoesNotMatch("(?i)hash|stamp|password", list.Out);

        Assert.Equal(CliApp.Ok, (await Server.RunCliAsync("", "roles", "create", "--name", "viewer", "--permissions", "users:read")).ExitCode);
        Assert.Equal(CliApp.Invalid, (await Server.RunCliAsync("", "roles", "create", "--name", "bogus", "--permissions", "users:everything")).ExitCode);
        Assert.Equal(CliApp.Ok, (await Server.RunCliAsync("", "users", "grant", "--username", name, "--role", "viewer")).ExitCode);
        Assert.Equal(CliApp.NotFound, (await Server.RunCliAsync("", "users", "grant", "--username", name, "--role", "nope")).ExitCode);

        // The running server sees the CLI's change within the sync interval, with the token it already has.
        await Eventually(async () =>
        {
            using var r = await fixture.Client.GetWithTokenAsync("api/admin/users?limit=1", tokens.AccessToken);
            return r.StatusCode == HttpStatusCode.OK;
        });

        var show = await Server.RunCliAsync("", "users", "show", "--username", name, "--json");
        Assert.Contains("viewer", show.Out, StringComparison.Ordinal);

        Assert.Equal(CliApp.Ok, (await Server.RunCliAsync("", "users", "revoke", "--username", name, "--role", "viewer")).ExitCode);
        await Eventually(async () =>
        {
            using var r = await fixture.Client.GetWithTokenAsync("api/admin/users?limit=1", tokens.AccessToken);
            return r.StatusCode == HttpStatusCode.Forbidden;
        });

        Assert.Equal(CliApp.Ok, (await Server.RunCliAsync("", "users", "delete", "--username", name)).ExitCode);
        Assert.Equal(CliApp.NotFound, (await Server.RunCliAsync("", "users", "show", "--username", name)).ExitCode);
        await Eventually(async () =>
        {
            using var r = await fixture.Client.GetWithTokenAsync("api/me", tokens.AccessToken);
            return r.StatusCode == HttpStatusCode.Unauthorized;
        });
    }

    [Fact]
    public async Task The_last_admin_cannot_be_deleted_from_the_cli_either()
    {
        // The fixture's admin may not be the only one (other tests create admins): demote down to one first is
        // not possible to arrange safely in parallel, so prove the rule on a fresh server.
        await using var server = await PortcullisServer.StartAsync();
        Assert.Equal(CliApp.Ok, (await server.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", "solo", "--password-stdin")).ExitCode);
        var deleted = await server.RunCliAsync("", "users", "delete", "--username", "solo");
        Assert.Equal(CliApp.Invalid, deleted.ExitCode);
        Assert.Contains("administrator", deleted.Error, StringComparison.Ordinal);
        Assert.Equal(CliApp.Invalid, (await server.RunCliAsync("", "users", "revoke", "--username", "solo", "--role", "admin")).ExitCode);
        Assert.Equal(CliApp.Invalid, (await server.RunCliAsync("", "users", "disable", "--username", "solo")).ExitCode);
    }

    [Fact]
    public async Task Clients_add_list_rotate_secret_and_remove()
    {
        var added = await Server.RunCliAsync("", "clients", "add", "--name", "billing", "--scopes", "orders", "--json");
        Assert.Equal(CliApp.Ok, added.ExitCode);
        var secret = JsonDocument.Parse(added.Out).RootElement;
        var clientId = secret.GetProperty("client_id").GetString()!;
        var first = secret.GetProperty("client_secret").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(clientId, first)).StatusCode);

        var list = await Server.RunCliAsync("", "clients", "list", "--json");
        Assert.Contains(clientId, list.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(first, list.Out, StringComparison.Ordinal);

        var rotated = await Server.RunCliAsync("", "clients", "rotate-secret", "--client-id", clientId, "--json");
        Assert.Equal(CliApp.Ok, rotated.ExitCode);
        var second = JsonDocument.Parse(rotated.Out).RootElement.GetProperty("client_secret").GetString()!;
        Assert.NotEqual(first, second);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ClientCredentialsAsync(clientId, first)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsAsync(clientId, second)).StatusCode);

        Assert.Equal(CliApp.Invalid, (await Server.RunCliAsync("", "clients", "remove", "--client-id", "portcullis")).ExitCode);
        Assert.Equal(CliApp.Ok, (await Server.RunCliAsync("", "clients", "remove", "--client-id", clientId)).ExitCode);
        Assert.Equal(CliApp.NotFound, (await Server.RunCliAsync("", "clients", "remove", "--client-id", clientId)).ExitCode);
        Assert.NotEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(clientId, second)).StatusCode);
    }

    [Theory]
    [InlineData("users")]
    [InlineData("users", "list")]
    [InlineData("roles", "create")]
    [InlineData("clients", "rotate-secret")]
    [InlineData("keys", "rotate")]
    [InlineData("admin", "create")]
    [InlineData("doctor")]
    public async Task Every_command_has_help(params string[] command)
    {
        var output = new StringWriter();
        var exit = await CliApp.RunAsync([.. command, "--help"], new StringReader(""), output, new StringWriter());
        Assert.Equal(CliApp.Ok, exit);
        Assert.Contains("Usage:", output.ToString(), StringComparison.Ordinal);
    }

    private async Task<HttpResponseMessage> ClientCredentialsAsync(string clientId, string secret) =>
        await fixture.Client.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret, ["scope"] = "orders",
        }));

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the change did not reach the running server in 10 s");
            await Task.Delay(100);
        }
    }
}
