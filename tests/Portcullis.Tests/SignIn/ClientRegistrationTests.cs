using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Registering an application that signs people in, with the CLI and the admin API: redirect URIs checked on the way
/// in (https, loopback http or a private-use scheme; no fragment, no user info), a secret only for a confidential
/// client and shown once, PKCE opt-out for confidential clients only; and the registered client works at once.
/// </summary>
public sealed class ClientRegistrationTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private readonly PortcullisServer _server = fixture.Server;

    [Fact]
    public async Task The_CLI_registers_a_public_client_with_its_redirect_uris_and_the_code_flow_works_with_it()
    {
        var cli = await _server.RunCliAsync(null, "clients", "add", "--name", "shop", "--type", "public",
            "--redirect-uri", "https://app.example/callback", "--redirect-uri", "com.example.app:/callback",
            "--post-logout-redirect-uri", "https://app.example/", "--scopes", "openid profile email offline_access orders", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var created = JsonDocument.Parse(cli.Out).RootElement;
        var clientId = created.GetProperty("client_id").GetString()!;
        Assert.StartsWith("app_", clientId, StringComparison.Ordinal);
        Assert.False(created.TryGetProperty("client_secret", out _)); // a public client has none

        var list = await _server.RunCliAsync(null, "clients", "list", "--json");
        var view = JsonDocument.Parse(list.Out).RootElement.EnumerateArray().Single(c => c.GetProperty("clientId").GetString() == clientId);
        Assert.Equal(["authorization_code", "refresh_token"], view.GetProperty("grantTypes").EnumerateArray().Select(g => g.GetString()).Order());
        Assert.Equal(2, view.GetProperty("redirectUris").GetArrayLength());

        var username = ClientFlows.UniqueName("reg");
        await fixture.Client.RegisterOkAsync(username);
        using var browser = new BrowserFlow(_server);
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var callback = await browser.AuthorizeAsync(
            BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest(clientId, "https://app.example/callback", challenge, "openid orders")), username);
        using var exchanged = await browser.ExchangeAsync(clientId, BrowserFlow.Query(callback)["code"], "https://app.example/callback", verifier);
        Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
    }

    [Theory]
    [InlineData("http://app.example/callback")]
    [InlineData("https://app.example/callback#frag")]
    [InlineData("https://user@app.example/callback")]
    [InlineData("javascript:alert(1)")]
    [InlineData("/relative/callback")]
    public async Task The_CLI_refuses_an_unsafe_redirect_uri_and_creates_nothing(string redirect)
    {
        var before = (await _server.RunCliAsync(null, "clients", "list", "--json")).Out;
        var cli = await _server.RunCliAsync(null, "clients", "add", "--name", "bad", "--type", "public", "--redirect-uri", redirect, "--scopes", "openid");
        Assert.Equal(4, cli.ExitCode);
        Assert.Contains("redirectUris", cli.Error, StringComparison.Ordinal);
        Assert.Equal(before, (await _server.RunCliAsync(null, "clients", "list", "--json")).Out);
    }

    [Fact]
    public async Task A_public_client_cannot_opt_out_of_PKCE()
    {
        var cli = await _server.RunCliAsync(null, "clients", "add", "--name", "spa", "--type", "public",
            "--redirect-uri", "https://app.example/cb", "--allow-no-pkce", "--scopes", "openid");
        Assert.Equal(4, cli.ExitCode);
        Assert.Contains("PKCE", cli.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_API_registers_confidential_and_public_clients_and_refuses_a_bad_redirect_uri()
    {
        var admin = await fixture.AdminTokenAsync();
        using (var confidential = await fixture.Client.PostWithTokenAsync("api/admin/clients", admin, new
        {
            name = "web shop", type = "confidential", scopes = new[] { "openid", "profile" },
            redirectUris = new[] { "https://shop.example/signin-oidc" }, postLogoutRedirectUris = new[] { "https://shop.example/" },
        }))
        {
            Assert.Equal(HttpStatusCode.Created, confidential.StatusCode);
            var body = await confidential.JsonAsync();
            Assert.StartsWith("app_", body.GetProperty("clientId").GetString(), StringComparison.Ordinal);
            Assert.True(body.GetProperty("secret").GetString()!.Length >= 43);
        }

        using (var spa = await fixture.Client.PostWithTokenAsync("api/admin/clients", admin, new
        {
            name = "spa", type = "public", scopes = new[] { "openid" }, redirectUris = new[] { "http://127.0.0.1:7000/cb" }, firstParty = true,
        }))
        {
            Assert.Equal(HttpStatusCode.Created, spa.StatusCode);
            Assert.False((await spa.JsonAsync()).TryGetProperty("secret", out _));
        }

        using var bad = await fixture.Client.PostWithTokenAsync("api/admin/clients", admin, new
        {
            name = "bad", type = "public", scopes = new[] { "openid" }, redirectUris = new[] { "https://evil.example/cb#x" },
        });
        var problem = await ProblemAssert.IsProblemAsync(bad, HttpStatusCode.BadRequest);
        Assert.True(problem.GetProperty("errors").TryGetProperty("redirectUris", out _));

        using var noRedirect = await fixture.Client.PostWithTokenAsync("api/admin/clients", admin, new { name = "spa2", type = "public", scopes = new[] { "openid" } });
        Assert.Equal(HttpStatusCode.BadRequest, noRedirect.StatusCode);
    }
}
