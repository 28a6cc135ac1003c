using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// Attack JWTs presented as Bearer tokens to <c>GET /api/me</c> (TEST_MATRIX J01–J13, NET-08/09). Every variant is
/// a change to a token that, unchanged, IS accepted (the positive controls), so each 401 is for the change.
/// </summary>
public sealed class ForgedAccessTokenTests(ForgedAccessTokenTests.Fixture fixture) : IClassFixture<ForgedAccessTokenTests.Fixture>
{
    /// <summary>The shared server, and a user the forged tokens name.</summary>
    public sealed class Fixture : ServerFixture
    {
        internal TokenForge Forge { get; private set; } = null!;

        protected override async Task StartedAsync() => Forge = await TokenForge.ForNewUserAsync(Server, Client);
    }

    private readonly HttpClient _http = fixture.Client;
    private TokenForge Forge => fixture.Forge;

    private async Task AssertAcceptedAsync(string token)
    {
        using var response = await _http.GetWithTokenAsync("api/me", token);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {response.Headers.WwwAuthenticate}");
    }

    private async Task AssertRefusedAsync(string token)
    {
        using var response = await _http.GetWithTokenAsync("api/me", token);
        await Refusal.AssertGeneric401Async(response);
    }

    [Fact]
    public async Task Positive_control_the_unmodified_forged_token_signed_with_the_real_key_is_accepted()
    {
        await AssertAcceptedAsync(Forge.Valid());
    }

    [Fact]
    public async Task Positive_control_a_real_token_from_the_token_endpoint_is_accepted()
    {
        var (_, _, tokens) = await _http.NewUserAsync("ctl");
        await AssertAcceptedAsync(tokens.AccessToken);
        await Refusal.AssertGeneric401Async(await _http.GetAsync("api/me"));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    [InlineData("NONE")]
    [InlineData("nOnE")]
    public async Task J01_alg_none_with_empty_signature_is_a_generic_401(string alg)
    {
        var header = Forge.Header();
        header["alg"] = alg;
        header.Remove("kid");
        await AssertRefusedAsync(Jwt.Unsigned(header, Forge.Payload()));

        // The same with the real kid left in: still nothing may skip the signature.
        header["kid"] = Forge.RealKey.KeyId;
        await AssertRefusedAsync(Jwt.Unsigned(header, Forge.Payload()));
    }

    [Theory]
    [InlineData("pem")]
    [InlineData("der")]
    [InlineData("jwk")]
    public async Task J02_HS256_signed_with_the_server_public_key_as_HMAC_secret_is_a_generic_401(string form)
    {
        byte[] secret;
        if (form == "jwk")
        {
            // The exact JWK text the server publishes, as an attacker would copy it.
            using var jwks = await _http.GetAsync(".well-known/jwks");
            var keys = (await jwks.JsonAsync()).GetProperty("keys");
            var published = keys.EnumerateArray().First(k => k.GetProperty("kid").GetString() == Forge.RealKey.KeyId);
            secret = Encoding.UTF8.GetBytes(published.GetRawText());
        }
        else
        {
            secret = form == "pem"
                ? Encoding.ASCII.GetBytes(Forge.RealKey.ECDsa.ExportSubjectPublicKeyInfoPem())
                : Forge.RealKey.ECDsa.ExportSubjectPublicKeyInfo();
        }

        var header = Forge.Header();
        header["alg"] = "HS256";
        await AssertRefusedAsync(Jwt.SignHs256(header, Forge.Payload(), secret));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task J02_ES256_signed_by_an_attacker_key_with_the_attacker_jwk_embedded_is_a_generic_401(bool withRealKid)
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var header = Forge.Header();
        header["jwk"] = Jwt.PublicJwk(attacker);
        if (!withRealKid)
        {
            header.Remove("kid");
        }

        await AssertRefusedAsync(Jwt.SignEs256(header, Forge.Payload(), attacker));
    }

    [Theory]
    [InlineData("exp in the past (now-600)")]
    [InlineData("no exp")]
    [InlineData("nbf in the future (now+600)")]
    [InlineData("iss https://evil.test")]
    [InlineData("aud other-api")]
    [InlineData("typ JWT")]
    [InlineData("no typ")]
    public async Task J03_claim_and_type_violations_on_a_token_signed_with_the_real_key_are_a_generic_401(string variant)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var token = variant switch
        {
            "exp in the past (now-600)" => Forge.Valid(payload: p => { p["exp"] = now - 600; p["iat"] = now - 900; }),
            "no exp" => Forge.Valid(payload: p => p.Remove("exp")),
            "nbf in the future (now+600)" => Forge.Valid(payload: p => { p["nbf"] = now + 600; p["exp"] = now + 900; }),
            "iss https://evil.test" => Forge.Valid(payload: p => p["iss"] = "https://evil.test"),
            "aud other-api" => Forge.Valid(payload: p => p["aud"] = "other-api"),
            "typ JWT" => Forge.Valid(header: h => h["typ"] = "JWT"),
            "no typ" => Forge.Valid(header: h => h.Remove("typ")),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };
        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task J04_exp_20_s_ago_is_inside_the_30_s_skew_and_accepted()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await AssertAcceptedAsync(Forge.Valid(payload: p => { p["exp"] = now - 20; p["iat"] = now - 320; }));
    }

    [Fact]
    public async Task J04_exp_90_s_ago_is_outside_the_skew_and_a_generic_401()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await AssertRefusedAsync(Forge.Valid(payload: p => { p["exp"] = now - 90; p["iat"] = now - 390; }));
    }

    [Fact]
    public async Task J04_NET08_iat_one_day_in_the_future_is_a_generic_401()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await AssertRefusedAsync(Forge.Valid(payload: p => { p["iat"] = now + 86_400; p["exp"] = now + 86_400 + 300; }));
        // and without iat at all (the future-iat check must not be skippable by leaving the claim out).
        await AssertRefusedAsync(Forge.Valid(payload: p => p.Remove("iat")));
    }

    [Fact]
    public async Task J04_NET09_a_crit_header_is_a_generic_401()
    {
        await AssertRefusedAsync(Forge.Valid(header: h => { h["crit"] = new JsonArray("exp"); }));
        await AssertRefusedAsync(Forge.Valid(header: h => { h["crit"] = new JsonArray("x-unknown"); h["x-unknown"] = true; }));
    }

    [Theory]
    [InlineData("aud array other,evil")]
    [InlineData("aud trailing space")]
    [InlineData("aud upper case")]
    [InlineData("aud array containing portcullis plus evil")]
    [InlineData("iss without trailing slash")]
    [InlineData("iss with extra slash")]
    [InlineData("iss upper-case scheme and host")]
    public async Task J06_audience_and_issuer_must_match_exactly(string variant)
    {
        var iss = Forge.Issuer;
        Action<JsonObject> change = variant switch
        {
            "aud array other,evil" => p => p["aud"] = new JsonArray("other", "evil"),
            "aud trailing space" => p => p["aud"] = "portcullis ",
            "aud upper case" => p => p["aud"] = "PORTCULLIS",
            "aud array containing portcullis plus evil" => p => p["aud"] = new JsonArray("evil", "portcullis"),
            "iss without trailing slash" => p => p["iss"] = iss.TrimEnd('/'),
            "iss with extra slash" => p => p["iss"] = iss + "/",
            "iss upper-case scheme and host" => p => p["iss"] = iss.Replace("https://127.0.0.1", "HTTPS://127.0.0.1", StringComparison.Ordinal),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };

        if (variant == "aud array containing portcullis plus evil")
        {
            // RFC 7519 §4.1.3: an array that contains our audience is a valid audience. This one must be ACCEPTED;
            // it is here so the "exact match" cases above are known to fail for the reason under test.
            await AssertAcceptedAsync(Forge.Valid(payload: change));
            return;
        }

        await AssertRefusedAsync(Forge.Valid(payload: change));
    }

    [Theory]
    [InlineData("path traversal, HS256 over an empty key")]
    [InlineData("path traversal, HS256 over a zero key")]
    [InlineData("SQL injection, HS256 over AAAA")]
    [InlineData("command injection |id")]
    [InlineData("10 KB kid")]
    [InlineData("unknown kid, signed with the real key")]
    [InlineData("no kid, signed with the real key")]
    public async Task J08_hostile_kid_values_are_a_generic_401_never_a_500(string variant)
    {
        var payload = Forge.Payload();
        var hs = Forge.Header();
        hs["alg"] = "HS256";
        var token = variant switch
        {
            "path traversal, HS256 over an empty key" => Jwt.SignHs256(With(hs, "../../../../../../dev/null"), payload, []),
            "path traversal, HS256 over a zero key" => Jwt.SignHs256(With(hs, "../../../../../../dev/null"), payload, new byte[32]),
            "SQL injection, HS256 over AAAA" => Jwt.SignHs256(With(hs, "x' UNION SELECT 'AAAA'-- "), payload, "AAAA"u8.ToArray()),
            "command injection |id" => Forge.Valid(header: h => h["kid"] = "|id"),
            "10 KB kid" => Forge.Valid(header: h => h["kid"] = new string('k', 10 * 1024)),
            "unknown kid, signed with the real key" => Forge.Valid(header: h => h["kid"] = "not-a-kid-of-this-server"),
            "no kid, signed with the real key" => Forge.Valid(header: h => h.Remove("kid")),
            _ => throw new ArgumentOutOfRangeException(nameof(variant)),
        };

        var mark = fixture.Server.Logs.Mark();
        using var response = await _http.GetWithTokenAsync("api/me", token);
        Assert.NotEqual(HttpStatusCode.InternalServerError, response.StatusCode);
        await Refusal.AssertGeneric401Async(response);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("SQLite", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("/dev/null", text, StringComparison.Ordinal);

        // Nothing went wrong inside: no error logged, no exception but a token-validation one, no SQL touched.
        var entries = fixture.Server.Logs.EntriesSince(mark);
        Assert.DoesNotContain(entries, e => e.Level >= LogLevel.Error);
        Assert.DoesNotContain(entries, e => e.Exception is not null && !typeof(SecurityTokenException).IsAssignableFrom(e.ExceptionType()));
        Assert.DoesNotContain(entries, e => e.Message.Contains("SQLite", StringComparison.OrdinalIgnoreCase));

        static JsonObject With(JsonObject header, string kid)
        {
            header["kid"] = kid;
            return header;
        }
    }

    [Fact]
    public async Task J10_a_real_token_with_a_payload_byte_changed_and_the_original_signature_is_a_generic_401()
    {
        var (_, _, tokens) = await _http.NewUserAsync("j10");
        var other = await _http.RegisterOkAsync(ClientFlows.UniqueName("j10v"));
        var parts = tokens.AccessToken.Split('.');
        await AssertAcceptedAsync(tokens.AccessToken);

        // sub → another real user; role → admin; and a single flipped byte in the raw payload.
        var payload = Jwt.PayloadOf(tokens.AccessToken);
        payload["sub"] = other.ToString();
        await AssertRefusedAsync($"{parts[0]}.{Jwt.Part(payload)}.{parts[2]}");

        payload = Jwt.PayloadOf(tokens.AccessToken);
        payload["role"] = "admin";
        await AssertRefusedAsync($"{parts[0]}.{Jwt.Part(payload)}.{parts[2]}");

        var raw = Base64UrlEncoder.DecodeBytes(parts[1]);
        raw[raw.Length / 2] ^= 0x01;
        await AssertRefusedAsync($"{parts[0]}.{Base64UrlEncoder.Encode(raw)}.{parts[2]}");
    }

    [Fact]
    public async Task J10_a_real_token_with_the_signature_removed_or_taken_from_another_token_is_a_generic_401()
    {
        var (_, _, a) = await _http.NewUserAsync("j10a");
        var (_, _, b) = await _http.NewUserAsync("j10b");
        var pa = a.AccessToken.Split('.');
        var pb = b.AccessToken.Split('.');

        await AssertRefusedAsync($"{pa[0]}.{pa[1]}.");
        await AssertRefusedAsync($"{pa[0]}.{pa[1]}");
        await AssertRefusedAsync($"{pa[0]}.{pa[1]}.{pb[2]}");

        // The originals still work: nothing above was refused for a reason outside the token.
        await AssertAcceptedAsync(a.AccessToken);
        await AssertAcceptedAsync(b.AccessToken);
    }

    [Fact]
    public async Task J13_a_3_MB_bearer_header_is_refused_quickly_and_the_server_stays_up()
    {
        // Sent raw while reading: HttpClient keeps writing after Kestrel has answered 431 and closed, and then often
        // sees only the reset. Reading as we write gets the server's own answer every time.
        var request = Encoding.ASCII.GetBytes(
            $"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\nAuthorization: Bearer {new string('a', 3_000_000)}\r\n\r\n");
        var watch = Stopwatch.StartNew();
        var exchange = await RawHttps.SendWhileReadingAsync(fixture.Server, request, TimeSpan.FromSeconds(10));
        watch.Stop();

        Assert.Equal(431, RawHttps.StatusCode(exchange.Response));
        Assert.True(exchange.ClosedByServer, exchange.Response);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");

        using var live = await _http.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        await AssertAcceptedAsync(Forge.Valid());
    }

    [Fact]
    public async Task J13_a_validly_signed_token_with_a_100_KB_pad_claim_is_refused()
    {
        var token = Forge.Valid(payload: p => p["pad"] = new string('p', 100 * 1024));
        Assert.True(token.Length > 32 * 1024, "The token must be over Kestrel's 32 KiB header limit.");
        var request = Encoding.ASCII.GetBytes($"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1:{fixture.Server.BaseAddress.Port}\r\nAuthorization: Bearer {token}\r\n\r\n");

        var exchange = await RawHttps.SendWhileReadingAsync(fixture.Server, request, TimeSpan.FromSeconds(10));

        // Over the header limit: refused by Kestrel before any token validation, whatever the signature.
        Assert.Equal(431, RawHttps.StatusCode(exchange.Response));
        await AssertAcceptedAsync(Forge.Valid());
    }

    [Fact]
    public async Task J13_a_validly_signed_token_just_over_the_8_KiB_cap_is_a_generic_401_and_just_under_is_accepted()
    {
        // Below Kestrel's 32 KiB header limit, so the 8 KiB MaxTokenBytes cap is what decides.
        var small = Forge.Valid(payload: p => p["pad"] = new string('p', 5 * 1024));
        Assert.InRange(small.Length, 7000, 8192);
        await AssertAcceptedAsync(small);

        var big = Forge.Valid(payload: p => p["pad"] = new string('p', 7 * 1024));
        Assert.InRange(big.Length, 8193, 16 * 1024);
        await AssertRefusedAsync(big);
    }

    [Fact]
    public async Task J13_a_token_in_the_query_string_is_ignored()
    {
        var token = Forge.Valid();
        await Refusal.AssertGeneric401Async(await _http.GetAsync("api/me?access_token=" + token));
        using var response = await _http.PostAsync("api/me/logout", new FormUrlEncodedContent(new Dictionary<string, string> { ["access_token"] = token }));
        await Refusal.AssertGeneric401Async(response);
    }
}
