using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portcullis.Access;
using Portcullis.Storage;

namespace Portcullis.Admin;

/// <summary>
/// Roles are named sets of catalogue permissions. <c>admin</c> (every permission) and <c>user</c> (self-service
/// only) are built in and cannot be changed or deleted. A change takes effect on every holder's next request.
/// Changes are serialized across instances by a database lock (<see cref="StoreLocks"/>): parallel edits end in
/// the state of one of them, never a mix, and each is audited in its own transaction.
/// </summary>
public sealed partial class RoleAdministration(PortcullisDb db, RoleManager<Role> roles, RevocationState revocations, Audit.AuditLog audit)
{
    public enum Outcome { Done, NotFound, Exists, BuiltIn, InUse }

    public sealed record RoleView(string Name, bool BuiltIn, IReadOnlyList<string> Permissions);

    public async Task<IReadOnlyList<RoleView>> ListAsync(CancellationToken ct)
    {
        var rows = await db.Roles.AsNoTracking()
            .Select(r => new { r.Name, Permissions = db.RoleClaims.Where(c => c.RoleId == r.Id && c.ClaimType == RolePermissions.PermissionClaim).Select(c => c.ClaimValue!).ToList() })
            .ToListAsync(ct);
        return [.. rows.Select(r => View(r.Name!, r.Permissions)).OrderBy(r => r.Name, StringComparer.Ordinal)];
    }

    public async Task<RoleView?> GetAsync(string name, CancellationToken ct) =>
        (await ListAsync(ct)).FirstOrDefault(r => r.Name == name);

    /// <summary>Returns field errors, or null when the name and permissions are acceptable.</summary>
    public static Dictionary<string, string[]>? Validate(string? name, IReadOnlyList<string>? permissions)
    {
        var errors = new Dictionary<string, string[]>();
        if (name is not null && !NamePattern().IsMatch(name))
        {
            errors["name"] = ["A role name has 2 to 32 characters: lower-case letters, digits, '-', '_' or ':', starting with a letter."];
        }

        if (permissions is null)
        {
            errors["permissions"] = ["A list of permissions is required."];
        }
        else if (permissions.FirstOrDefault(p => !Access.Permissions.IsKnown(p)) is not null)
        {
            errors["permissions"] = ["Every permission must come from the catalogue (GET /api/admin/permissions)."];
        }

        return errors.Count > 0 ? errors : null;
    }

    public async Task<Outcome> CreateAsync(string name, IReadOnlyList<string> permissions, CancellationToken ct)
    {
        if (Roles.IsBuiltIn(name))
        {
            return Outcome.BuiltIn;
        }

        await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.Roles, ct);
        if (await roles.RoleExistsAsync(name))
        {
            return Outcome.Exists;
        }

        var role = new Role { Id = Guid.NewGuid(), Name = name };
        audit.Record(Audit.AuditEvents.RoleCreated, Audit.AuditOutcomes.Success, $"role:{name}", new { permissions });
        Check(await roles.CreateAsync(role));
        foreach (var permission in permissions.Distinct(StringComparer.Ordinal))
        {
            Check(await roles.AddClaimAsync(role, new Claim(RolePermissions.PermissionClaim, permission)));
        }

        await AnnounceAsync(tx, ct);
        return Outcome.Done;
    }

    public async Task<Outcome> UpdateAsync(string name, IReadOnlyList<string> permissions, CancellationToken ct)
    {
        if (Roles.IsBuiltIn(name))
        {
            return Outcome.BuiltIn;
        }

        // Read under the lock: an edit on another instance commits before this one reads the current permissions.
        await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.Roles, ct);
        if (await roles.FindByNameAsync(name) is not { } role)
        {
            return Outcome.NotFound;
        }

        audit.Record(Audit.AuditEvents.RoleUpdated, Audit.AuditOutcomes.Success, $"role:{name}", new { permissions });
        var current = (await roles.GetClaimsAsync(role)).Where(c => c.Type == RolePermissions.PermissionClaim).ToList();
        foreach (var claim in current.Where(c => !permissions.Contains(c.Value)))
        {
            Check(await roles.RemoveClaimAsync(role, claim));
        }

        foreach (var permission in permissions.Distinct(StringComparer.Ordinal).Where(p => current.All(c => c.Value != p)))
        {
            Check(await roles.AddClaimAsync(role, new Claim(RolePermissions.PermissionClaim, permission)));
        }

        await AnnounceAsync(tx, ct);
        return Outcome.Done;
    }

    public async Task<Outcome> DeleteAsync(string name, CancellationToken ct)
    {
        if (Roles.IsBuiltIn(name))
        {
            return Outcome.BuiltIn;
        }

        // Read under the lock: a change on another instance commits before this one reads the role and its holders.
        // Also the membership lock: an assignment of this role in flight commits first (and is revoked here) or
        // finds the role gone, instead of inserting a membership of a deleted role.
        await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.Roles, ct);
        await StoreLocks.AlsoLockAsync(db, StoreLocks.Name.AdminMembership, ct);
        if (await roles.FindByNameAsync(name) is not { } role)
        {
            return Outcome.NotFound;
        }

        audit.Record(Audit.AuditEvents.RoleDeleted, Audit.AuditOutcomes.Success, $"role:{name}");
        var holders = await db.UserRoles.Where(ur => ur.RoleId == role.Id).Select(ur => ur.UserId).ToListAsync(ct);
        Check(await roles.DeleteAsync(role));
        foreach (var holder in holders)
        {
            revocations.Add(db, RevocationKinds.User, holder.ToString());
        }

        await AnnounceAsync(tx, ct);
        foreach (var holder in holders)
        {
            revocations.InvalidateUser(holder);
        }

        return Outcome.Done;
    }

    private async Task AnnounceAsync(Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction tx, CancellationToken ct)
    {
        revocations.Add(db, RevocationKinds.Role, "*");
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        revocations.InvalidateRoles();
    }

    private static RoleView View(string name, IReadOnlyList<string> stored) => new(
        name,
        Roles.IsBuiltIn(name),
        [.. (Roles.IsBuiltIn(name) ? (IEnumerable<string>)RolePermissions.BuiltInPermissions(name) : stored).Order(StringComparer.Ordinal)]);

    private static void Check(IdentityResult result)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("The role change failed: " + string.Join(", ", result.Errors.Select(e => e.Code)));
        }
    }

    [GeneratedRegex("^[a-z][a-z0-9_:-]{1,31}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
