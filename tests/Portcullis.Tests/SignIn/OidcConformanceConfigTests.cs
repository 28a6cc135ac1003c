using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tests.Tokens;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The OpenID Foundation's Config OP plan (<c>oidcc-config-certification-test-plan</c>): the discovery document, and
/// key rotation seen by a relying party that validates ID tokens against the JWKS. Its own server, since rotating
/// the keys changes what every other test would see.
/// </summary>
public sealed class OidcConformanceConfigTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly OidcConformanceKit _kit = new(fixture.Server, fixture.Client);

    [Fact]
    public async Task oidcc_discovery_endpoint_verification()
    {
        using var response = await fixture.Client.GetAsync(".well-known/openid-configuration");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        var config = await response.JsonAsync();

        // issuer: the URL the document was fetched from, minus /.well-known/openid-configuration (Discovery §4.3).
        var fetchedFrom = new Uri(fixture.Server.BaseAddress, ".well-known/openid-configuration").AbsoluteUri;
        var issuer = config.GetProperty("issuer").GetString()!;
        Assert.Equal(fetchedFrom[..^".well-known/openid-configuration".Length], issuer);
        Assert.StartsWith("https://", issuer, StringComparison.Ordinal);

        // Every endpoint (the suite: all endpoints are https), the required ones present.
        var endpoints = config.EnumerateObject().Where(p => p.Name.EndsWith("_endpoint", StringComparison.Ordinal) || p.Name == "jwks_uri").Select(p => p.Name).ToList();
        Assert.Subset(endpoints.ToHashSet(), new HashSet<string> { "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri" });
        foreach (var endpoint in endpoints)
        {
            var url = new Uri(config.GetProperty(endpoint).GetString()!);
            Assert.Equal("https", url.Scheme);
            Assert.Equal(new Uri(issuer).Authority, url.Authority);
        }

        static string[] Values(JsonElement config, string name) => [.. config.GetProperty(name).EnumerateArray().Select(v => v.GetString()!)];
        Assert.Contains("openid", Values(config, "scopes_supported"));
        Assert.Contains("code", Values(config, "response_types_supported"));
        Assert.NotEmpty(Values(config, "subject_types_supported"));
        Assert.All(Values(config, "subject_types_supported"), t => Assert.Contains(t, new[] { "public", "pairwise" }));
        Assert.Contains("ES256", Values(config, "id_token_signing_alg_values_supported"));
        Assert.DoesNotContain("none", Values(config, "id_token_signing_alg_values_supported"));

        // The fields the suite checks when present, as Portcullis publishes them.
        Assert.Equal(["client_secret_basic", "client_secret_post", "private_key_jwt"], Values(config, "token_endpoint_auth_methods_supported").Order(StringComparer.Ordinal));
        Assert.Contains("authorization_code", Values(config, "grant_types_supported"));
        Assert.Equal(["query", "form_post", "fragment"], Values(config, "response_modes_supported"));
        var claims = Values(config, "claims_supported");
        Assert.All(new[] { "sub", "iss", "aud", "exp", "iat", "name", "preferred_username", "email", "email_verified", "auth_time", "amr" },
            c => Assert.Contains(c, claims));
        Assert.DoesNotContain("address", claims);
        Assert.DoesNotContain("phone_number", claims);
        Assert.False(config.GetProperty("claims_parameter_supported").GetBoolean());
        Assert.Equal(["S256"], Values(config, "code_challenge_methods_supported"));

        // jwks_uri answers with public keys, each with a distinct kid.
        await AssertJwksAsync();
    }

    /// <summary>The suite's JWKS checks: keys with a kid each, distinct, no private or symmetric key material.</summary>
    private async Task<string[]> AssertJwksAsync()
    {
        var keys = JsonDocument.Parse(await fixture.Client.GetStringAsync(".well-known/jwks")).RootElement.GetProperty("keys").EnumerateArray().ToList();
        Assert.NotEmpty(keys);
        var kids = keys.Select(k => k.GetProperty("kid").GetString()!).ToArray();
        Assert.All(kids, kid => Assert.False(string.IsNullOrEmpty(kid)));
        Assert.Equal(kids.Length, kids.Distinct(StringComparer.Ordinal).Count());
        foreach (var key in keys)
        {
            foreach (var secret in new[] { "d", "k", "p", "q", "dp", "dq", "qi" })
            {
                Assert.False(key.TryGetProperty(secret, out _), $"private or symmetric key material ({secret}) in the JWKS");
            }
        }

        return kids;
    }

    [Fact]
    public async Task oidcc_server_rotate_keys()
    {
        var client = await _kit.ClientAsync();
        var (_, username) = await _kit.UserAsync();
        using var browser = await _kit.SignedInAsync(username);

        async Task<(JsonElement Tokens, string Nonce)> IssueAsync()
        {
            var request = OidcConformanceKit.Request(client);
            using var response = await browser.GetAsync(BrowserFlow.AuthorizeUrl(request));
            var code = _kit.CodeOf(response.Headers.Location!, request);
            using var exchanged = await OidcConformanceKit.ExchangeAsync(browser, client, code);
            Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
            return (await exchanged.JsonAsync(), request["nonce"]!);
        }

        var (before, beforeNonce) = await IssueAsync();
        var oldKid = (await _kit.ValidIdTokenAsync(before, client, beforeNonce)).Kid;

        var kidsBefore = await AssertJwksAsync();
        Assert.Contains(oldKid, kidsBefore);

        var cli = await fixture.Server.RunCliAsync(null, "keys", "rotate", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var newKid = JsonDocument.Parse(cli.Out).RootElement.GetProperty("kid").GetString()!;
        Assert.NotEqual(oldKid, newKid);

        // New ID tokens are signed by the new key, and verify with it from the JWKS.
        string? issuedKid = null;
        Assert.True(await Refusal.EventuallyAsync(async () =>
        {
            var (after, afterNonce) = await IssueAsync();
            issuedKid = (await _kit.ValidIdTokenAsync(after, client, afterNonce)).Kid;
            return issuedKid == newKid;
        }, TimeSpan.FromSeconds(5)), $"new ID tokens still carry kid {issuedKid}");

        // The JWKS after: a new key, and the old one still there (the suite compares the two sets).
        var kidsAfter = await AssertJwksAsync();
        Assert.Contains(newKid, kidsAfter);
        Assert.DoesNotContain(newKid, kidsBefore);
        Assert.Subset(kidsAfter.ToHashSet(), kidsBefore.ToHashSet());

        // The old ID token still verifies against the JWKS (the old key stays published until its tokens expire).
        Assert.Equal(oldKid, (await _kit.ValidIdTokenAsync(before, client, beforeNonce)).Kid);
        using var userInfo = await OidcConformanceKit.UserInfoAsync(browser, before.GetProperty("access_token").GetString()!, HttpMethod.Get);
        Assert.Equal(HttpStatusCode.OK, userInfo.StatusCode);
        Assert.Equal("ES256", Jwt.HeaderOf(before.GetProperty("id_token").GetString()!)["alg"]!.GetValue<string>());
    }
}
