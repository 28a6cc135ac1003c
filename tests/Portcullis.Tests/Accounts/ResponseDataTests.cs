using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Accounts;

/// <summary>D01: responses and tokens carry no secrets, hashes or account internals (DATA-01, JWT-12).</summary>
public sealed partial class ResponseDataTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly string[] TokenKeys = ["access_token", "refresh_token", "id_token"];
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task D01_register_token_me_and_token_payloads_hold_no_secret_or_internal_field()
    {
        var username = ClientFlows.UniqueName("dana");
        var email = $"{username}@example.com";

        using var register = await _http.RegisterAsync(username, email: email);
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);
        AssertClean("register", await register.Content.ReadAsStringAsync());

        using var login = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var tokenText = await login.Content.ReadAsStringAsync();
        AssertClean("token response", tokenText, skipValuesOf: TokenKeys);

        using var tokenBody = JsonDocument.Parse(tokenText);
        var accessToken = tokenBody.RootElement.GetProperty("access_token").GetString()!;
        var idToken = tokenBody.RootElement.GetProperty("id_token").GetString()!;
        var refreshToken = tokenBody.RootElement.GetProperty("refresh_token").GetString()!;
        Assert.Equal(2, accessToken.Count(c => c == '.')); // a JWS, not an encrypted token
        Assert.DoesNotContain('.', refreshToken); // opaque

        using var me = await _http.GetWithTokenAsync("api/me", accessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        AssertClean("/api/me", await me.Content.ReadAsStringAsync());

        foreach (var (name, jwt) in new[] { ("access token", accessToken), ("id token", idToken) })
        {
            var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(jwt.Split('.')[1]));
            // OIDC Core §3.1.3.6 puts at_hash (a hash of the access token, not of anything secret) in the id token.
            AssertClean(name + " payload", payload, skipValuesOf: ["at_hash", "c_hash"]);
            Assert.DoesNotContain(username, payload, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(email, payload, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("example.com", payload, StringComparison.OrdinalIgnoreCase);
            using var claims = JsonDocument.Parse(payload);
            foreach (var forbidden in new[] { "email", "name", "preferred_username", "unique_name", "username" })
            {
                Assert.False(claims.RootElement.TryGetProperty(forbidden, out _), $"The {name} has a '{forbidden}' claim.");
            }
        }
    }

    [Fact]
    public async Task D01_failed_login_and_validation_answers_hold_no_secret_or_internal_field()
    {
        var username = ClientFlows.UniqueName("dana");
        await _http.RegisterOkAsync(username);

        using var wrong = await _http.PasswordGrantAsync(username, "wrong-but-long-enough-passphrase");
        AssertClean("failed login", await wrong.Content.ReadAsStringAsync(), allowDescription: true);

        using var invalid = await _http.RegisterAsync(ClientFlows.UniqueName("dana"), "short");
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        // The validation answer may name the "password" field and its rule, but no value or internal member.
        var text = await invalid.Content.ReadAsStringAsync();
        foreach (var internalWord in new[] { "hash", "salt", "stamp", "lockout", "secret", "short" })
        {
            Assert.DoesNotContain(internalWord, text, StringComparison.OrdinalIgnoreCase);
        }
    }

    private static void AssertClean(string what, string json, string[]? skipValuesOf = null, bool allowDescription = false)
    {
        using var document = JsonDocument.Parse(json);
        Walk(document.RootElement, null);

        void Walk(JsonElement element, string? key)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        var keyAllowed = skipValuesOf?.Contains(property.Name) == true;
                        Assert.False(!keyAllowed && Sensitive().IsMatch(property.Name), $"{what}: the key '{property.Name}' looks sensitive.");
                        if (!keyAllowed && !(allowDescription && property.Name == "error_description"))
                        {
                            Walk(property.Value, property.Name);
                        }
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item, key);
                    }

                    break;
                case JsonValueKind.String:
                    var value = element.GetString()!;
                    Assert.False(Sensitive().IsMatch(value), $"{what}: the value of '{key}' looks sensitive.");
                    Assert.DoesNotContain("$argon2", value, StringComparison.Ordinal);
                    break;
            }
        }
    }

    [GeneratedRegex("pass(word)?|hash|salt|stamp|lockout|secret", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Sensitive();
}
