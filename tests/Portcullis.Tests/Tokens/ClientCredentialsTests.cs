using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>Confidential clients made with <c>clients add</c>, the client_credentials grant, and grant-type boundaries.</summary>
public sealed class ClientCredentialsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    private async Task<(string Id, string Secret)> AddClientAsync(string scopes = "orders")
    {
        var cli = await _server.RunCliAsync(null, "clients", "add", "--name", "svc", "--scopes", scopes, "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var body = JsonDocument.Parse(cli.Out).RootElement;
        return (body.GetProperty("client_id").GetString()!, body.GetProperty("client_secret").GetString()!);
    }

    private Task<HttpResponseMessage> ClientCredentialsAsync(string clientId, string? secret, string scope = "orders")
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["scope"] = scope };
        if (secret is not null)
        {
            form["client_secret"] = secret;
        }

        return _http.PostAsync("connect/token", new FormUrlEncodedContent(form));
    }

    [Fact]
    public async Task A_CLI_client_gets_a_scoped_token_without_a_refresh_token()
    {
        var (id, secret) = await AddClientAsync();
        using var response = await ClientCredentialsAsync(id, secret);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.False(body.TryGetProperty("refresh_token", out _));
        Assert.False(body.TryGetProperty("id_token", out _));

        var payload = Jwt.PayloadOf(body.GetProperty("access_token").GetString()!);
        Assert.Equal(id, payload["client_id"]!.GetValue<string>());
        Assert.Equal(id, payload["sub"]!.GetValue<string>());
        Assert.Equal("orders", payload["scope"]!.GetValue<string>());
        Assert.Equal("portcullis", payload["aud"]!.GetValue<string>());
        Assert.False(payload.ContainsKey("sep"), "a client token must not look like a user token");
    }

    [Fact]
    public async Task A_client_cannot_ask_for_a_scope_it_was_not_given()
    {
        var (id, secret) = await AddClientAsync("orders");
        await AddClientAsync("billing"); // the scope exists, just not for this client
        using var response = await ClientCredentialsAsync(id, secret, "orders billing");
        // OpenIddict answers invalid_request here (RFC 6749 §5.2 would say invalid_scope); either way no token.
        await Refusal.AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task A_wrong_or_missing_client_secret_is_invalid_client_401()
    {
        var (id, secret) = await AddClientAsync();
        using var wrong = await ClientCredentialsAsync(id, secret[..^2] + (secret[^2..] == "AA" ? "BB" : "AA"));
        await Refusal.AssertOAuthErrorAsync(wrong, HttpStatusCode.Unauthorized, "invalid_client");
        // A missing secret is a malformed request for this grant (OpenIddict: invalid_request), not a failed authentication.
        using var missing = await ClientCredentialsAsync(id, null);
        await Refusal.AssertOAuthErrorAsync(missing, HttpStatusCode.BadRequest, "invalid_request");
        using var unknown = await ClientCredentialsAsync("svc_unknown", secret);
        await Refusal.AssertOAuthErrorAsync(unknown, HttpStatusCode.Unauthorized, "invalid_client");
    }

    [Fact]
    public async Task The_database_holds_no_raw_client_secret()
    {
        var (id, secret) = await AddClientAsync();
        var stored = await StoredText.AllValuesAsync(_server, "OpenIddictApplications");
        Assert.Contains(stored, v => v == id); // control: the search finds what is stored
        Assert.DoesNotContain(stored, v => v.Contains(secret, StringComparison.Ordinal));
        Assert.False(await StoredText.FilesContainAsync(_server, secret), "the raw client secret is in the database files");
    }

    [Fact]
    public async Task A_service_client_cannot_use_the_password_grant()
    {
        var (id, secret) = await AddClientAsync();
        var username = ClientFlows.UniqueName("ccpw");
        await _http.RegisterOkAsync(username);
        using var response = await _http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = username,
            ["password"] = ClientFlows.Password,
            ["client_id"] = id,
            ["client_secret"] = secret,
            ["scope"] = "openid",
        }));
        await Refusal.AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "unauthorized_client");
    }

    [Fact]
    public async Task A_client_token_on_api_me_is_403_because_a_client_is_not_a_user()
    {
        var (id, secret) = await AddClientAsync();
        using var response = await ClientCredentialsAsync(id, secret);
        var token = (await response.ReadTokensAsync()).AccessToken;
        using var me = await _http.GetWithTokenAsync("api/me", token);
        Assert.Equal(HttpStatusCode.Forbidden, me.StatusCode);
        Assert.DoesNotContain("username", await me.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var logout = await _http.PostWithTokenAsync("api/me/logout-everywhere", token);
        Assert.Equal(HttpStatusCode.Forbidden, logout.StatusCode);
    }

    [Fact]
    public async Task The_public_first_party_client_cannot_use_client_credentials()
    {
        // Without a secret the request is malformed for this grant; with one, a public client has no secret to match.
        using var withoutSecret = await ClientCredentialsAsync(PortcullisServer.ClientId, null, "openid");
        await Refusal.AssertOAuthErrorAsync(withoutSecret, HttpStatusCode.BadRequest, "invalid_request");
        using var withSecret = await ClientCredentialsAsync(PortcullisServer.ClientId, "guessed-secret", "openid");
        await Refusal.AssertOAuthErrorAsync(withSecret, HttpStatusCode.BadRequest, "unauthorized_client");
    }

    [Fact]
    public async Task Error_bodies_from_the_token_endpoint_have_no_error_uri()
    {
        var requests = new[]
        {
            new Dictionary<string, string> { ["grant_type"] = "password", ["username"] = "nobody_here", ["password"] = "wrong password 123456", ["client_id"] = PortcullisServer.ClientId },
            new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = "garbage", ["client_id"] = PortcullisServer.ClientId },
            new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = "x", ["client_id"] = PortcullisServer.ClientId },
            new Dictionary<string, string> { ["grant_type"] = "implicit", ["client_id"] = PortcullisServer.ClientId },
            new Dictionary<string, string> { ["grant_type"] = "password", ["client_id"] = "no-such-client" },
            new Dictionary<string, string> { ["client_id"] = PortcullisServer.ClientId },
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = "svc_x", ["client_secret"] = "x" },
        };
        foreach (var form in requests)
        {
            using var response = await _http.PostAsync("connect/token", new FormUrlEncodedContent(form));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"{form["client_id"]}: {(int)response.StatusCode} {text}");
            var body = JsonDocument.Parse(text).RootElement;
            Assert.True(body.TryGetProperty("error", out _), text);
            Assert.False(body.TryGetProperty("error_uri", out _), text);
            Assert.DoesNotContain("openiddict", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("documentation.", text, StringComparison.OrdinalIgnoreCase);
        }

        using var revoke = await _http.PostAsync("connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "x", ["client_id"] = "no-such-client" }));
        var revokeText = await revoke.Content.ReadAsStringAsync();
        Assert.DoesNotContain("error_uri", revokeText, StringComparison.Ordinal);
    }
}
