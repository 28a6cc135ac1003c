using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Security.Claims;
using Microsoft.EntityFrameworkCore;
using Portcullis.Storage;

namespace Portcullis.Access;

/// <summary>
/// What a caller may do, decided on the server at every request: the user's current roles (from the cached
/// user state, not the token) mapped to permissions through the role table (cached here, reloaded when a role
/// changes). A client's permissions are its granted scopes that name catalogue permissions.
/// </summary>
public sealed class RolePermissions : IDisposable
{
    private readonly IServiceScopeFactory scopes;
    private readonly RevocationState users;

    public RolePermissions(IServiceScopeFactory scopes, RevocationState users)
    {
        this.scopes = scopes;
        this.users = users;
        users.RolesChanged += Invalidate;
    }

    public const string PermissionClaim = "permission";

    private volatile FrozenDictionary<string, FrozenSet<string>>? _byRole;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private long _generation;

    public static IReadOnlySet<string> BuiltInPermissions(string role) => role switch
    {
        Roles.Admin => Permissions.All.Keys.ToFrozenSet(StringComparer.Ordinal),
        _ => FrozenSet<string>.Empty,
    };

    public void Dispose()
    {
        users.RolesChanged -= Invalidate;
        _loading.Dispose();
    }

    /// <summary>Forget the role table; the next check reloads it (one query).</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        _byRole = null;
    }

    public async ValueTask<IReadOnlySet<string>> ForCallerAsync(ClaimsPrincipal caller, CancellationToken ct)
    {
        if (caller.UserId() is { } userId)
        {
            var state = await users.GetUserAsync(userId, ct);
            if (!state.Active)
            {
                return FrozenSet<string>.Empty;
            }

            var table = await TableAsync(ct);
            var granted = new HashSet<string>(StringComparer.Ordinal);
            foreach (var role in state.Roles)
            {
                if (table.TryGetValue(role, out var permissions))
                {
                    granted.UnionWith(permissions);
                }
            }

            return granted;
        }

        // A client token: its scopes that are catalogue permissions.
        var scopes = caller.FindFirstValue("scope")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return scopes.Where(Permissions.IsKnown).ToFrozenSet(StringComparer.Ordinal);
    }

    private async ValueTask<FrozenDictionary<string, FrozenSet<string>>> TableAsync(CancellationToken ct)
    {
        if (_byRole is { } table)
        {
            return table;
        }

        await _loading.WaitAsync(ct);
        try
        {
            if (_byRole is { } loaded)
            {
                return loaded;
            }

            var generation = Interlocked.Read(ref _generation);
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var rows = await db.Roles.AsNoTracking()
                .Select(r => new { r.Name, Permissions = db.RoleClaims.Where(c => c.RoleId == r.Id && c.ClaimType == PermissionClaim).Select(c => c.ClaimValue!).ToList() })
                .ToListAsync(ct);
            var result = rows.ToFrozenDictionary(
                r => r.Name!,
                r => (r.Name is Roles.Admin ? (IEnumerable<string>)BuiltInPermissions(Roles.Admin) : r.Permissions).ToFrozenSet(StringComparer.Ordinal),
                StringComparer.Ordinal);
            if (Interlocked.Read(ref _generation) == generation)
            {
                _byRole = result;
            }

            return result;
        }
        finally
        {
            _loading.Release();
        }
    }
}
