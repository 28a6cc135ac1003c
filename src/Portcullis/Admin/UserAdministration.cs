using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;

namespace Portcullis.Admin;

/// <summary>
/// User administration shared by the admin API and the CLI. Every change takes effect on the user's next request
/// (cached state invalidated after the commit), and the last enabled administrator can be neither demoted,
/// disabled nor deleted.
/// </summary>
public sealed class UserAdministration(
    PortcullisDb db, UserManager<User> users, SessionTerminator sessions, UserSessions userSessions, RevocationState revocations,
    IOpenIddictAuthorizationManager authorizations, AuditLog audit)
{
    public enum Outcome { Done, NotFound, LastAdmin, UnknownRole }

    public sealed record UserView(Guid Id, string Username, string Email, DateTimeOffset Created, bool Disabled, IReadOnlyList<string> Roles);

    public sealed record SessionView(string Id, string? Client, DateTimeOffset? Created);

    public sealed record Page<T>(IReadOnlyList<T> Items, string? Next);

    public const int MaxPageSize = 200;

    public async Task<Page<UserView>> ListAsync(string? search, string? after, int limit, CancellationToken ct)
    {
        var query = db.Users.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(search))
        {
            var key = UsernameRules.Key(search.Trim());
            query = query.Where(u => u.NormalizedUserName!.Contains(key) || u.NormalizedEmail!.Contains(key));
        }

        if (after is not null)
        {
#pragma warning disable CA1309 // translated to SQL; the column's collation (binary) makes it ordinal
            query = query.Where(u => string.Compare(u.NormalizedUserName, after) > 0);
#pragma warning restore CA1309
        }

        var rows = await query.OrderBy(u => u.NormalizedUserName).Take(limit + 1).ToListAsync(ct);
        var items = new List<UserView>();
        foreach (var user in rows.Take(limit))
        {
            items.Add(await ViewAsync(user));
        }

        return new Page<UserView>(items, rows.Count > limit ? rows[limit - 1].NormalizedUserName : null);
    }

    public async Task<UserView?> GetAsync(Guid id) =>
        await users.FindByIdAsync(id.ToString()) is { } user ? await ViewAsync(user) : null;

    public Task<User?> FindAsync(Guid id) => users.FindByIdAsync(id.ToString());

    public async Task<UserView> ViewAsync(User user) =>
        new(user.Id, user.UserName!, user.Email!, user.CreatedAt, user.IsDisabled, [.. (await users.GetRolesAsync(user)).Order(StringComparer.Ordinal)]);

    public Task<Outcome> SetDisabledAsync(Guid id, bool disabled, CancellationToken ct) =>
        GuardedAsync(id, leavesAdmin: disabled, async user =>
        {
            audit.Record(disabled ? AuditEvents.UserDisabled : AuditEvents.UserEnabled, AuditOutcomes.Success, $"user:{user.Id}");
            await sessions.EndAllSessionsAsync(user, () =>
            {
                user.IsDisabled = disabled;
                return Task.CompletedTask;
            }, ct);
            return Outcome.Done;
        }, ct);

    /// <summary>Ends every session; the user cannot sign in again until they choose a new password.</summary>
    public async Task<Outcome> RequirePasswordChangeAsync(Guid id, CancellationToken ct)
    {
        if (await FindAsync(id) is not { } user)
        {
            return Outcome.NotFound;
        }

        audit.Record(AuditEvents.PasswordChangeRequired, AuditOutcomes.Success, $"user:{user.Id}");
        await sessions.EndAllSessionsAsync(user, () =>
        {
            user.MustChangePassword = true;
            return Task.CompletedTask;
        }, ct);
        return Outcome.Done;
    }

    public Task<Outcome> DeleteAsync(Guid id, CancellationToken ct) =>
        GuardedAsync(id, leavesAdmin: true, async user =>
        {
            audit.Record(AuditEvents.UserDeleted, AuditOutcomes.Success, $"user:{user.Id}", new { username = user.UserName });
            // Sessions and live tokens die first (same transaction), then the account goes.
            await sessions.EndAllSessionsAsync(user, async () =>
            {
                var deleted = await users.DeleteAsync(user);
                if (!deleted.Succeeded)
                {
                    throw new InvalidOperationException("Deleting the user failed: " + string.Join(", ", deleted.Errors.Select(e => e.Code)));
                }
            }, ct);
            return Outcome.Done;
        }, ct);

    public async Task<Outcome> EndSessionsAsync(Guid id, CancellationToken ct)
    {
        if (await FindAsync(id) is not { } user)
        {
            return Outcome.NotFound;
        }

        audit.Record(AuditEvents.SessionsEndedByAdmin, AuditOutcomes.Success, $"user:{user.Id}", new { sessions = "all" });
        await sessions.EndAllSessionsAsync(user, change: null, ct);
        return Outcome.Done;
    }

    public async Task<Outcome> AssignRoleAsync(Guid id, string role, CancellationToken ct)
    {
        if (!await db.Roles.AnyAsync(r => r.Name == role, ct))
        {
            return Outcome.UnknownRole;
        }

        return await GuardedAsync(id, leavesAdmin: false, async user =>
        {
            // Again under the lock: a role deleted meanwhile (RoleAdministration.DeleteAsync takes this lock too).
            if (!await db.Roles.AnyAsync(r => r.Name == role, ct))
            {
                return Outcome.UnknownRole;
            }

            if (!await users.IsInRoleAsync(user, role))
            {
                audit.Record(AuditEvents.RoleAssigned, AuditOutcomes.Success, $"user:{user.Id}", new { role });
                Check(await users.AddToRoleAsync(user, role));
            }

            await AnnounceAsync(user, ct);
            return Outcome.Done;
        }, ct);
    }

    public async Task<Outcome> RemoveRoleAsync(Guid id, string role, CancellationToken ct)
    {
        if (!await db.Roles.AnyAsync(r => r.Name == role, ct))
        {
            return Outcome.UnknownRole;
        }

        return await GuardedAsync(id, leavesAdmin: role == Roles.Admin, async user =>
        {
            if (await users.IsInRoleAsync(user, role))
            {
                audit.Record(AuditEvents.RoleRemoved, AuditOutcomes.Success, $"user:{user.Id}", new { role });
                Check(await users.RemoveFromRoleAsync(user, role));
            }

            await AnnounceAsync(user, ct);
            return Outcome.Done;
        }, ct);
    }

    /// <summary>The user's valid sessions (OpenIddict authorizations), newest first.</summary>
    public async Task<IReadOnlyList<SessionView>> SessionsAsync(Guid id, CancellationToken ct) =>
        [.. (await userSessions.ListAsync(id, ct)).Select(s => new SessionView(s.Id, s.Client, s.Created))];

    /// <summary>Ends one session if it belongs to the user; another user's session id is "not found".</summary>
    public async Task<Outcome> EndSessionAsync(Guid userId, string sessionId, CancellationToken ct)
    {
        if (await authorizations.FindByIdAsync(sessionId, ct) is not { } authorization
            || await authorizations.GetSubjectAsync(authorization, ct) != userId.ToString())
        {
            return Outcome.NotFound;
        }

        audit.Record(AuditEvents.SessionsEndedByAdmin, AuditOutcomes.Success, $"session:{sessionId}", new { user = userId });
        await sessions.EndSessionAsync(sessionId, accessTokenId: null, ct);
        return Outcome.Done;
    }

    /// <summary>
    /// Runs a change to who is an administrator under a database lock (<see cref="StoreLocks"/>), in one transaction
    /// with its audit event: the last-admin check, the change and the event cannot interleave with the same
    /// sequence on another request or another Portcullis instance (two admins demoting each other).
    /// </summary>
    private async Task<Outcome> GuardedAsync(Guid id, bool leavesAdmin, Func<User, Task<Outcome>> change, CancellationToken ct)
    {
        User user;
        await using (var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.AdminMembership, ct))
        {
            // Read only under the lock: what another instance committed before we got it is what we check.
            if (await FindAsync(id) is not { } found)
            {
                return Outcome.NotFound;
            }

            user = found;
            if (leavesAdmin && await users.IsInRoleAsync(user, Roles.Admin) && !user.IsDisabled)
            {
                var admins = await users.GetUsersInRoleAsync(Roles.Admin);
                if (admins.Count(a => !a.IsDisabled) <= 1)
                {
                    return Outcome.LastAdmin;
                }
            }

            if (await change(user) is not Outcome.Done and var refused)
            {
                return refused; // rolled back: nothing of it is saved
            }

            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }

        // Again after the commit: a request that re-read the user while the transaction was open cached the old state.
        revocations.InvalidateUser(user.Id);
        return Outcome.Done;
    }

    /// <summary>Role membership changed: every instance re-reads this user's state on the next request.</summary>
    private async Task AnnounceAsync(User user, CancellationToken ct)
    {
        revocations.Add(db, RevocationKinds.User, user.Id.ToString());
        await db.SaveChangesAsync(ct);
        revocations.InvalidateUser(user.Id);
    }

    private static void Check(IdentityResult result)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("The role change failed: " + string.Join(", ", result.Errors.Select(e => e.Code)));
        }
    }
}
