using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Access;

/// <summary>
/// What makes a still-unexpired access token invalid, kept in memory so the hot path does no database read:
/// revoked token ids (<c>jti</c>, never a hash of the token text: ES256 signatures are malleable), revoked
/// sessions (<c>sid</c>), and each user's current security epoch and enabled flag (loaded once, then kept until
/// a change is announced). Changes made in this process apply at once; changes made by other processes (the CLI,
/// other instances) arrive through the <see cref="Revocation"/> feed within the sync interval (<c>Tokens:SyncInterval</c>).
/// </summary>
public sealed class RevocationState(IServiceScopeFactory scopes, IOptions<RevocationOptions> options, TimeProvider time) : IDisposable
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _sessions = new(StringComparer.Ordinal);
    private readonly MemoryCache _users = new(new MemoryCacheOptions { SizeLimit = 200_000 });
    private long _lastSeen;
    private long _userGeneration;

    /// <summary>A user's security state and public profile, as cached: enough for token checks, permission checks
    /// and <c>GET /api/me</c> without a query. Any change to these fields announces the user (feed + invalidate).</summary>
    public sealed record UserState(bool Active, int Epoch, IReadOnlyList<string> Roles,
        string? Username = null, string? Email = null, DateTimeOffset Created = default);

    /// <summary>Raised when any role's permissions change (here or, through the feed, elsewhere).</summary>
    public event Action? RolesChanged;

    public bool IsTokenRevoked(string jti) => _tokens.ContainsKey(jti);

    public bool IsSessionRevoked(string sid) => _sessions.ContainsKey(sid);

    /// <summary>The user's current state; one query the first time a user is seen, none after.</summary>
    public async ValueTask<UserState> GetUserAsync(Guid userId, CancellationToken ct)
    {
        if (_users.TryGetValue(userId, out UserState? cached) && cached is not null)
        {
            return cached;
        }

        // A change announced while this query runs must not be overwritten by the stale row it read.
        var generation = Interlocked.Read(ref _userGeneration);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var row = await db.Users.AsNoTracking()
            .Where(u => u.Id == userId)
            .Select(u => new
            {
                u.IsDisabled,
                u.SecurityEpoch,
                u.UserName,
                u.Email,
                u.CreatedAt,
                Roles = db.UserRoles.Where(ur => ur.UserId == u.Id).Join(db.Roles, ur => ur.RoleId, r => r.Id, (_, r) => r.Name!).ToList(),
            })
            .SingleOrDefaultAsync(ct);
        var state = row is null
            ? new UserState(false, -1, [])
            : new UserState(!row.IsDisabled, row.SecurityEpoch, [.. row.Roles.Order(StringComparer.Ordinal)], row.UserName, row.Email, row.CreatedAt);
        if (Interlocked.Read(ref _userGeneration) == generation)
        {
            _users.Set(userId, state, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = TimeSpan.FromMinutes(30) });
        }

        return state;
    }

    /// <summary>
    /// Records a revocation in the feed (saved with the caller's transaction). Token and session revocations apply
    /// here at once (failing closed if the transaction is lost); a user change must be followed, after the commit,
    /// by <see cref="InvalidateUser"/>, so no reader caches the row from before it.
    /// </summary>
    public void Add(PortcullisDb db, string kind, string value)
    {
        var now = time.GetUtcNow();
        var expires = now + options.Value.Retention;
        db.Revocations.Add(new Revocation { Kind = kind, Value = value, CreatedAt = now, ExpiresAt = expires });
        if (kind is RevocationKinds.AccessToken or RevocationKinds.Session)
        {
            Apply(kind, value, expires);
        }
    }

    /// <summary>After the commit of a role change: every cached role table is stale.</summary>
    public void InvalidateRoles() => Apply(RevocationKinds.Role, "*", default);

    public void InvalidateUser(Guid userId) => Apply(RevocationKinds.User, userId.ToString(), default);

    /// <summary>
    /// Reads feed rows written since the last call (by anyone) and applies them; prunes expired ones.
    /// <para>
    /// Ids are handed out when a row is inserted but become visible when its transaction commits, and on PostgreSQL
    /// two transactions can commit in the opposite order: after reading id 101, id 100 may still appear. An id
    /// skipped over is therefore remembered as a gap and asked for again on every pass for <see cref="GapWait"/>
    /// (longer than any transaction may run) — otherwise a revocation committed a moment late would never apply,
    /// and a revoked token, session or role would keep working. (The previous version also jumped to the table's
    /// highest id after an empty read, in a second statement, which skipped any row committed in between.)
    /// </para>
    /// </summary>
    public async Task SyncAsync(PortcullisDb db, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var tick = time.GetTimestamp();
        var gaps = _gaps.Keys.ToList();
        var rows = await db.Revocations.AsNoTracking()
            .Where(r => (r.Id > _lastSeen || gaps.Contains(r.Id)) && r.ExpiresAt > now)
            .OrderBy(r => r.Id)
            .Take(10_000)
            .ToListAsync(ct);
        foreach (var row in rows)
        {
            Apply(row.Kind, row.Value, row.ExpiresAt);
            _gaps.Remove(row.Id);
            if (row.Id > _lastSeen)
            {
                // The ids between may belong to transactions still running (bounded: a burst of in-flight ones is small).
                for (var id = Math.Max(_lastSeen + 1, row.Id - MaxGapsPerStep); id < row.Id; id++)
                {
                    _gaps.TryAdd(id, tick);
                }

                _lastSeen = row.Id;
            }
        }

        foreach (var id in _gaps.Where(g => time.GetElapsedTime(g.Value, tick) > GapWait).Select(g => g.Key).ToList())
        {
            _gaps.Remove(id); // rolled back, or an expired row: nothing will ever appear there
        }

        Prune(_tokens, now);
        Prune(_sessions, now);
    }

    /// <summary>How long a skipped id is asked for again: well beyond any transaction (commands time out sooner).</summary>
    public static readonly TimeSpan GapWait = TimeSpan.FromMinutes(2);

    private const int MaxGapsPerStep = 1_000;

    // Only SyncAsync touches it, and SyncAsync never runs twice at once (start-up, then the one background loop).
    // Values are monotonic timestamps: a wall-clock step forward must not give up on a gap before its transaction
    // could have committed (the revocation would never apply). Row expiry stays on the wall clock: it is stored.
    private readonly Dictionary<long, long> _gaps = [];

    private void Apply(string kind, string value, DateTimeOffset expires)
    {
        switch (kind)
        {
            case RevocationKinds.AccessToken:
                _tokens[value] = expires;
                break;
            case RevocationKinds.Session:
                _sessions[value] = expires;
                break;
            case RevocationKinds.Role:
                RolesChanged?.Invoke();
                break;
            case RevocationKinds.User when Guid.TryParse(value, out var id):
                Interlocked.Increment(ref _userGeneration);
                _users.Remove(id);
                break;
        }
    }

    private static void Prune(ConcurrentDictionary<string, DateTimeOffset> set, DateTimeOffset now)
    {
        foreach (var (key, expires) in set)
        {
            if (expires <= now)
            {
                set.TryRemove(key, out _);
            }
        }
    }

    public void Dispose() => _users.Dispose();
}

/// <summary>How long a revocation stays in the feed and in memory: as long as the token it kills could still be
/// accepted (the access-token lifetime plus the allowed clock skew; set by the tokens feature).</summary>
public sealed class RevocationOptions
{
    public TimeSpan Retention { get; set; } = TimeSpan.FromMinutes(15);
}
