using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>What the server publishes: JWKS (public P-256 keys only) and discovery (exact issuer, the grants offered).</summary>
public sealed class DiscoveryTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task The_JWKS_has_only_public_EC_P256_keys_each_with_a_kid()
    {
        using var response = await _http.GetAsync(".well-known/jwks");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        var keys = JsonDocument.Parse(text).RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.NotEmpty(keys);
        foreach (var key in keys)
        {
            Assert.Equal("EC", key.GetProperty("kty").GetString());
            Assert.Equal("P-256", key.GetProperty("crv").GetString());
            Assert.False(string.IsNullOrEmpty(key.GetProperty("kid").GetString()));
            Assert.True(key.TryGetProperty("x", out _) && key.TryGetProperty("y", out _), text);
            Assert.False(key.TryGetProperty("d", out _), "a private key part is published");
            Assert.False(key.TryGetProperty("k", out _), "a symmetric key is published");
            if (key.TryGetProperty("alg", out var alg))
            {
                Assert.Equal("ES256", alg.GetString());
            }

            if (key.TryGetProperty("use", out var use))
            {
                Assert.Equal("sig", use.GetString());
            }
        }

        // The key that signs tokens is one of them.
        var (_, _, tokens) = await _http.NewUserAsync("jwks");
        var kid = Jwt.HeaderOf(tokens.AccessToken)["kid"]!.GetValue<string>();
        Assert.Contains(keys, k => k.GetProperty("kid").GetString() == kid);
    }

    [Fact]
    public async Task Discovery_has_the_exact_issuer_the_code_flow_with_S256_only_and_no_implicit_or_hybrid()
    {
        using var response = await _http.GetAsync(".well-known/openid-configuration");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var config = await response.JsonAsync();

        Assert.Equal(_server.BaseAddress.AbsoluteUri, config.GetProperty("issuer").GetString());
        Assert.Equal(
            ["authorization_code", "client_credentials", "password", "refresh_token"],
            config.GetProperty("grant_types_supported").EnumerateArray().Select(g => g.GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(new Uri(_server.BaseAddress, "connect/authorize").AbsoluteUri, config.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(new Uri(_server.BaseAddress, "connect/userinfo").AbsoluteUri, config.GetProperty("userinfo_endpoint").GetString());
        Assert.Equal(new Uri(_server.BaseAddress, "connect/endsession").AbsoluteUri, config.GetProperty("end_session_endpoint").GetString());
        Assert.Equal(["code"], config.GetProperty("response_types_supported").EnumerateArray().Select(t => t.GetString()!));
        Assert.Equal(["S256"], config.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(t => t.GetString()!));
        Assert.True(config.GetProperty("authorization_response_iss_parameter_supported").GetBoolean());

        Assert.Equal(new Uri(_server.BaseAddress, ".well-known/jwks").AbsoluteUri, config.GetProperty("jwks_uri").GetString());
        Assert.Equal(new Uri(_server.BaseAddress, "connect/token").AbsoluteUri, config.GetProperty("token_endpoint").GetString());

        // The issuer in discovery is the one in the tokens.
        var (_, _, tokens) = await _http.NewUserAsync("disco");
        Assert.Equal(config.GetProperty("issuer").GetString(), Jwt.PayloadOf(tokens.AccessToken)["iss"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_access_token_has_the_documented_shape_and_no_personal_data()
    {
        var (id, username, tokens) = await _http.NewUserAsync("shape");
        var header = Jwt.HeaderOf(tokens.AccessToken);
        Assert.Equal("ES256", header["alg"]!.GetValue<string>());
        Assert.Equal("at+jwt", header["typ"]!.GetValue<string>());

        var payload = Jwt.PayloadOf(tokens.AccessToken);
        Assert.Equal(_server.BaseAddress.AbsoluteUri, payload["iss"]!.GetValue<string>());
        Assert.Equal("portcullis", payload["aud"]!.GetValue<string>());
        Assert.Equal(id.ToString(), payload["sub"]!.GetValue<string>());
        Assert.Equal(PortcullisServer.ClientId, payload["client_id"]!.GetValue<string>());
        foreach (var claim in new[] { "exp", "iat", "jti", "sid", "sep", "scope" })
        {
            Assert.True(payload.ContainsKey(claim), $"missing {claim}");
        }

        Assert.DoesNotContain(username, payload.ToJsonString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@example.com", payload.ToJsonString(), StringComparison.OrdinalIgnoreCase);
    }
}
