using System.Security.Claims;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Hosting;

namespace Portcullis.Tokens;

/// <summary>
/// Remembers access tokens that passed full JWT validation (signature, algorithm, type, issuer, audience, lifetime)
/// so a token presented again skips the ES256 verification (BENCHMARKS.md, proposal 2). It only ever answers "this
/// exact string was valid and still is":
/// <list type="bullet">
/// <item>the key is the <b>whole token string</b>, compared ordinally: a token with one character changed (a tampered
/// payload, a re-encoded or malleated signature) is another key, misses, and is validated in full;</item>
/// <item>only valid results are stored, so garbage cannot fill it; a hit after the token's <c>exp</c> plus the
/// configured skew (the allowance full validation gives) is dropped and validated in full, which then refuses it;</item>
/// <item>an entry remembers the key ring it was validated against: after any key change (rotation, removal,
/// reload from the database) it misses and the token is validated against the new keys;</item>
/// <item>revocation is not cached: JwtBearer raises <c>OnTokenValidated</c> (jti, sid, user epoch, enabled) after the
/// handler returns, on every request, hit or miss;</item>
/// <item>bounded by <see cref="TokensOptions.ValidatedTokenCacheSize"/> entries (0 turns it off).</item>
/// </list>
/// </summary>
public sealed class ValidatedTokenCache(KeyRing keys, IOptions<TokensOptions> options, TimeProvider time) : IDisposable
{
    private readonly MemoryCache _entries = new(new MemoryCacheOptions
    {
        SizeLimit = Math.Max(1, options.Value.ValidatedTokenCacheSize),
        CompactionPercentage = 0.25,
    });

    private long _hits;
    private long _misses;

    private sealed record Entry(JsonWebToken Token, ClaimsIdentity Identity, string? Issuer, DateTimeOffset NotAfter, KeyRing.Snapshot Keys);

    public bool Enabled => options.Value.ValidatedTokenCacheSize > 0;

    internal long Hits => Interlocked.Read(ref _hits);

    internal long Misses => Interlocked.Read(ref _misses);

    internal long Count => _entries.Count;

    /// <summary>A result equal to the earlier full validation, with a copy of its identity, or null (validate in full).</summary>
    public TokenValidationResult? TryGet(string token)
    {
        if (!Enabled)
        {
            return null;
        }

        if (_entries.TryGetValue(token, out Entry? entry) && entry is not null)
        {
            if (ReferenceEquals(entry.Keys, keys.Current) && time.GetUtcNow() < entry.NotAfter)
            {
                Interlocked.Increment(ref _hits);
                return new TokenValidationResult
                {
                    IsValid = true,
                    SecurityToken = entry.Token,
                    // Downstream code may add claims to the identity: every request gets its own copy.
                    ClaimsIdentity = entry.Identity.Clone(),
                    Issuer = entry.Issuer,
                    TokenType = entry.Token.Typ,
                };
            }

            _entries.Remove(token);
        }

        Interlocked.Increment(ref _misses);
        return null;
    }

    /// <summary>Stores a successful full validation; <paramref name="keysUsed"/> is the key ring read before it started.</summary>
    public void Add(string token, TokenValidationResult result, KeyRing.Snapshot keysUsed)
    {
        if (!Enabled || !result.IsValid || result.SecurityToken is not JsonWebToken jwt || result.ClaimsIdentity is not { } identity)
        {
            return;
        }

        // Valid until exp + skew, exactly what full validation accepts; never without an exp (full validation requires one).
        if (!jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Exp, out var exp))
        {
            return;
        }

        var notAfter = DateTimeOffset.FromUnixTimeSeconds(exp) + options.Value.ClockSkew;
        if (notAfter <= time.GetUtcNow())
        {
            return;
        }

        _entries.Set(token, new Entry(jwt, identity.Clone(), result.Issuer, notAfter, keysUsed), new MemoryCacheEntryOptions
        {
            Size = 1,
            AbsoluteExpiration = notAfter, // memory is freed by then; the check in TryGet is what decides
        });
    }

    public void Dispose() => _entries.Dispose();
}

/// <summary>The JWT handler JwtBearer uses: the cache first, then the full validation of <see cref="JsonWebTokenHandler"/>.</summary>
public sealed class CachingJsonWebTokenHandler(ValidatedTokenCache cache, KeyRing keys) : JsonWebTokenHandler
{
    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (cache.TryGet(token) is { } cached)
        {
            return cached;
        }

        // The key ring is read before validating: if it changes meanwhile, the entry is stale at once and misses.
        var keysUsed = keys.Current;
        var result = await base.ValidateTokenAsync(token, validationParameters);
        cache.Add(token, result, keysUsed);
        return result;
    }
}
