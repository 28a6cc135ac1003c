using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary><c>keys rotate</c> from the CLI while the server runs: published within seconds, old tokens keep working.</summary>
public sealed class KeyRotationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    private async Task<string[]> JwksKidsAsync()
    {
        var jwks = JsonDocument.Parse(await _http.GetStringAsync(".well-known/jwks")).RootElement;
        return [.. jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!)];
    }

    [Fact]
    public async Task Key_rotation_by_the_CLI_publishes_the_new_key_signs_with_it_and_keeps_old_tokens_valid()
    {
        var (_, username, before) = await _http.NewUserAsync("rot");
        var oldKid = Jwt.HeaderOf(before.AccessToken)["kid"]!.GetValue<string>();
        Assert.Equal([oldKid], await JwksKidsAsync());

        var cli = await _server.RunCliAsync(null, "keys", "rotate", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var newKid = JsonDocument.Parse(cli.Out).RootElement.GetProperty("kid").GetString()!;
        Assert.NotEqual(oldKid, newKid);

        Assert.True(
            await Refusal.EventuallyAsync(async () => (await JwksKidsAsync()).Order().SequenceEqual(new[] { oldKid, newKid }.Order()), TimeSpan.FromSeconds(3)),
            "the JWKS did not list both keys within 3 s");

        // Once published, the new key is also the one that signs.
        string? issuedKid = null;
        Assert.True(await Refusal.EventuallyAsync(async () =>
        {
            var tokens = await _http.LoginAsync(username);
            issuedKid = Jwt.HeaderOf(tokens.AccessToken)["kid"]!.GetValue<string>();
            return issuedKid == newKid && await Refusal.MeStatusAsync(_http, tokens.AccessToken) == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(3)), $"new tokens still carry kid {issuedKid}");

        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, before.AccessToken));
        using var refresh = await _http.RefreshAsync(before.RefreshToken!);
        var rotated = await refresh.ReadTokensAsync();
        Assert.Equal(newKid, Jwt.HeaderOf(rotated.AccessToken)["kid"]!.GetValue<string>());

        var list = await _server.RunCliAsync(null, "keys", "list", "--json");
        var keys = JsonDocument.Parse(list.Out).RootElement.EnumerateArray().ToList();
        Assert.Equal(JsonValueKind.Null, keys.Single(k => k.GetProperty("kid").GetString() == newKid).GetProperty("retired").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, keys.Single(k => k.GetProperty("kid").GetString() == oldKid).GetProperty("retired").ValueKind);
        Assert.DoesNotContain("\"d\"", list.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE", list.Out, StringComparison.OrdinalIgnoreCase);
    }
}
