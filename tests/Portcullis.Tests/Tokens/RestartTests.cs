using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>F04: tokens survive a restart on the same data directory; keys are loaded, not regenerated.</summary>
public sealed class RestartTests
{
    // The issuer normally contains the (free, changing) port; a fixed one keeps it equal across the restart.
    private static readonly Dictionary<string, string?> Settings = new() { ["Tokens:Issuer"] = "https://portcullis.test/" };

    private static async Task<string[]> KidsAsync(PortcullisServer server)
    {
        var cli = await server.RunCliAsync(null, "keys", "list", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        return [.. JsonDocument.Parse(cli.Out).RootElement.EnumerateArray().Select(k => k.GetProperty("kid").GetString()!)];
    }

    [Fact]
    public async Task F04_access_and_refresh_tokens_issued_before_a_restart_still_work_after_it()
    {
        var first = await PortcullisServer.StartAsync(Settings);
        string dataDirectory;
        ClientFlows.Tokens tokens;
        string[] kidsBefore;
        string jwksBefore;
        try
        {
            dataDirectory = first.DataDirectory;
            using var http = first.CreateClient();
            (_, _, tokens) = await http.NewUserAsync("f04");
            Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken));
            kidsBefore = await KidsAsync(first);
            jwksBefore = await http.GetStringAsync(".well-known/jwks");
        }
        finally
        {
            await first.StopKeepingDataAsync();
        }

        await using var second = await PortcullisServer.StartAsync(Settings, dataDirectory: dataDirectory);
        using var client = second.CreateClient();

        Assert.Equal(kidsBefore, await KidsAsync(second));
        Assert.Equal(jwksBefore, await client.GetStringAsync(".well-known/jwks"));
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(client, tokens.AccessToken));
        using var refresh = await client.RefreshAsync(tokens.RefreshToken!);
        var rotated = await refresh.ReadTokensAsync();
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(client, rotated.AccessToken));
        Assert.Equal(kidsBefore[0], Jwt.HeaderOf(rotated.AccessToken)["kid"]!.GetValue<string>());
    }

    [Fact]
    public async Task F04_a_session_ended_before_the_restart_stays_ended_after_it()
    {
        var first = await PortcullisServer.StartAsync(Settings);
        string dataDirectory;
        ClientFlows.Tokens tokens;
        try
        {
            dataDirectory = first.DataDirectory;
            using var http = first.CreateClient();
            (_, _, tokens) = await http.NewUserAsync("f04l");
            using var logout = await http.PostWithTokenAsync("api/me/logout", tokens.AccessToken);
            Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        }
        finally
        {
            await first.StopKeepingDataAsync();
        }

        await using var second = await PortcullisServer.StartAsync(Settings, dataDirectory: dataDirectory);
        using var client = second.CreateClient();
        using var me = await client.GetWithTokenAsync("api/me", tokens.AccessToken);
        await Refusal.AssertGeneric401Async(me);
        using var refresh = await client.RefreshAsync(tokens.RefreshToken!);
        await Refusal.AssertInvalidGrantAsync(refresh);
    }
}
