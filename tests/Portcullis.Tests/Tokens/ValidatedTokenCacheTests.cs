using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// The cache of validated access tokens (BENCHMARKS.md proposal 2) never turns a refused token into an accepted one:
/// a changed string is validated in full, revocation still applies at once to a cached token, a key change makes
/// cached entries miss, a removed key refuses its cached tokens, an entry dies at exp + skew, and the cache is bounded.
/// </summary>
public sealed class ValidatedTokenCacheTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    private ValidatedTokenCache Cache => _server.Services.GetRequiredService<ValidatedTokenCache>();

    /// <summary>Two calls: the first validates in full, the second must be a cache hit.</summary>
    private async Task<ClientFlows.Tokens> CachedSessionAsync(string prefix)
    {
        var (_, _, tokens) = await _http.NewUserAsync(prefix);
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, tokens.AccessToken));
        var hits = Cache.Hits;
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, tokens.AccessToken));
        Assert.True(Cache.Hits > hits, "the second /api/me with the same token was not served from the cache");
        return tokens;
    }

    private static string ReplaceAt(string s, int index) => string.Concat(s.AsSpan(0, index), s[index] == 'A' ? "B" : "A", s.AsSpan(index + 1));

    [Fact]
    public async Task J10_a_cached_token_with_one_character_changed_is_validated_in_full_and_refused()
    {
        var tokens = await CachedSessionAsync("jc10");
        var parts = tokens.AccessToken.Split('.');
        var signatureStart = parts[0].Length + parts[1].Length + 2;
        var tampered = new[]
        {
            ReplaceAt(tokens.AccessToken, signatureStart + (parts[2].Length / 2)), // a signature byte
            ReplaceAt(tokens.AccessToken, parts[0].Length + 1 + (parts[1].Length / 2)), // a payload byte, original signature
            parts[0] + "." + parts[1] + ".", // signature removed
        };
        foreach (var token in tampered)
        {
            var misses = Cache.Misses;
            using var me = await _http.GetWithTokenAsync("api/me", token);
            await Refusal.AssertGeneric401Async(me);
            Assert.True(Cache.Misses > misses, "a changed token string was answered from the cache");
        }

        // The original still works, and nothing invalid was stored.
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(_http, tokens.AccessToken));
        foreach (var token in tampered)
        {
            Assert.Null(Cache.TryGet(token));
        }
    }

    [Fact]
    public async Task J14_a_cached_token_is_refused_at_once_after_logout()
    {
        var tokens = await CachedSessionAsync("jc14");
        using var logout = await _http.PostWithTokenAsync("api/me/logout", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);

        var hits = Cache.Hits;
        using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
        await Refusal.AssertGeneric401Async(me);
        Assert.True(Cache.Hits > hits, "the refusal must come from the revocation check after a cache hit");
    }

    [Fact]
    public async Task J14_a_cached_token_is_refused_at_once_after_logout_everywhere_and_after_an_access_token_revocation()
    {
        var everywhere = await CachedSessionAsync("jc14e");
        using (var logout = await _http.PostWithTokenAsync("api/me/logout-everywhere", everywhere.AccessToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        }

        using (var me = await _http.GetWithTokenAsync("api/me", everywhere.AccessToken))
        {
            await Refusal.AssertGeneric401Async(me);
        }

        var revoked = await CachedSessionAsync("jc14r");
        using (var revoke = await _http.PostAsync("connect/revoke", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = revoked.AccessToken, ["token_type_hint"] = "access_token", ["client_id"] = PortcullisServer.ClientId,
        })))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        using (var me = await _http.GetWithTokenAsync("api/me", revoked.AccessToken))
        {
            await Refusal.AssertGeneric401Async(me);
        }
    }

    [Fact]
    public async Task J08_a_removed_signing_key_refuses_its_cached_tokens_at_once()
    {
        // Its own server: this test changes the keys.
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var cache = server.Services.GetRequiredService<ValidatedTokenCache>();
        var (_, username, tokens) = await http.NewUserAsync("jc08");
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken));
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken));
        var oldKid = Jwt.HeaderOf(tokens.AccessToken)["kid"]!.GetValue<string>();

        var keys = server.Services.GetRequiredService<KeyRing>();
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            await keys.RotateAsync(db, scope.ServiceProvider.GetRequiredService<Portcullis.Audit.AuditLog>(), CancellationToken.None);
            // The background sync (every 200 ms in tests) may have reloaded the ring first: either way it is current now.
            await keys.ReloadAsync(db, CancellationToken.None);
        }

        // Rotation: the retired key is still published, so the token stays valid, but through a full validation.
        var misses = cache.Misses;
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken));
        Assert.True(cache.Misses > misses, "a key change must make cached entries miss");
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, tokens.AccessToken)); // cached again

        // Removal: the old key is gone from the database and the ring; its cached token is refused at once.
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            Assert.Equal(1, await db.SigningKeys.Where(k => k.KeyId == oldKid).ExecuteDeleteAsync());
            // The background sync (every 200 ms in tests) may have reloaded the ring first: either way it is current now.
            await keys.ReloadAsync(db, CancellationToken.None);
        }

        using var me = await http.GetWithTokenAsync("api/me", tokens.AccessToken);
        await Refusal.AssertGeneric401Async(me);

        // A token signed with the new key works.
        var fresh = await http.LoginAsync(username);
        Assert.Equal(HttpStatusCode.OK, await Refusal.MeStatusAsync(http, fresh.AccessToken));
    }

    // ------------------------------------------------------------------ the cache alone, on fake time

    private sealed class Unit : IDisposable
    {
        public FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

        public KeyRing Keys { get; }

        public ValidatedTokenCache Cache { get; }

        private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        public Unit(int size = 100)
        {
            var options = Options.Create(new TokensOptions { ValidatedTokenCacheSize = size, ClockSkew = TimeSpan.FromSeconds(30) });
            Keys = new KeyRing(new EphemeralDataProtectionProvider(), options, Time);
            Cache = new ValidatedTokenCache(Keys, options, Time);
        }

        public (string Token, TokenValidationResult Result) Valid(TimeSpan lifetime, string subject = "user-1")
        {
            var now = Time.GetUtcNow().UtcDateTime;
            var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Subject = new ClaimsIdentity([new Claim("sub", subject)]),
                IssuedAt = now,
                NotBefore = now,
                Expires = now + lifetime,
                SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key), SecurityAlgorithms.EcdsaSha256),
            });
            return (token, new TokenValidationResult
            {
                IsValid = true,
                SecurityToken = new JsonWebToken(token),
                ClaimsIdentity = new ClaimsIdentity([new Claim("sub", subject)], "Bearer"),
            });
        }

        public void Dispose()
        {
            Cache.Dispose();
            Keys.Dispose();
            _key.Dispose();
        }
    }

    [Fact]
    public void J04_a_cached_entry_dies_at_exp_plus_the_skew_never_later()
    {
        using var unit = new Unit();
        var (token, result) = unit.Valid(TimeSpan.FromMinutes(5));
        unit.Cache.Add(token, result, unit.Keys.Current);
        Assert.NotNull(unit.Cache.TryGet(token));

        unit.Time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(29));
        Assert.NotNull(unit.Cache.TryGet(token)); // inside the skew full validation also accepts
        unit.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(unit.Cache.TryGet(token));
        Assert.Equal(0, unit.Cache.Count); // removed, not kept
    }

    [Fact]
    public void Only_valid_results_with_an_unexpired_exp_are_stored()
    {
        using var unit = new Unit();
        var (token, result) = unit.Valid(TimeSpan.FromMinutes(5));
        unit.Cache.Add(token, new TokenValidationResult { IsValid = false, SecurityToken = result.SecurityToken, ClaimsIdentity = result.ClaimsIdentity }, unit.Keys.Current);
        Assert.Null(unit.Cache.TryGet(token));

        var (expired, expiredResult) = unit.Valid(TimeSpan.FromMinutes(1));
        unit.Time.Advance(TimeSpan.FromMinutes(2));
        unit.Cache.Add(expired, expiredResult, unit.Keys.Current);
        Assert.Null(unit.Cache.TryGet(expired));
    }

    [Fact]
    public void An_entry_from_another_key_ring_misses()
    {
        using var unit = new Unit();
        var (token, result) = unit.Valid(TimeSpan.FromMinutes(5));
        var other = new KeyRing.Snapshot([], new Dictionary<string, SecurityKey>(), null, "other");
        unit.Cache.Add(token, result, other);
        Assert.Null(unit.Cache.TryGet(token));
    }

    [Fact]
    public void Each_hit_gets_its_own_identity()
    {
        using var unit = new Unit();
        var (token, result) = unit.Valid(TimeSpan.FromMinutes(5));
        unit.Cache.Add(token, result, unit.Keys.Current);
        var first = unit.Cache.TryGet(token)!;
        first.ClaimsIdentity.AddClaim(new Claim("role", "admin"));
        var second = unit.Cache.TryGet(token)!;
        Assert.False(second.ClaimsIdentity.HasClaim("role", "admin"));
        Assert.NotSame(first.ClaimsIdentity, second.ClaimsIdentity);
    }

    [Fact]
    public void The_cache_never_holds_more_than_its_limit_and_size_0_turns_it_off()
    {
        using var unit = new Unit(size: 8);
        for (var i = 0; i < 50; i++)
        {
            var (token, result) = unit.Valid(TimeSpan.FromMinutes(5), $"user-{i}");
            unit.Cache.Add(token, result, unit.Keys.Current);
            Assert.True(unit.Cache.Count <= 8, $"{unit.Cache.Count} entries after {i + 1} additions");
        }

        using var off = new Unit(size: 0);
        var (t, r) = off.Valid(TimeSpan.FromMinutes(5));
        off.Cache.Add(t, r, off.Keys.Current);
        Assert.Null(off.Cache.TryGet(t));
        Assert.Equal(0, off.Cache.Count);
    }
}
