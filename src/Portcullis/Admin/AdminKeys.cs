using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.Admin;

/// <summary><c>/api/admin/keys</c>: signing keys (public facts only) and rotation without a restart.</summary>
public static class AdminKeys
{
    public sealed record KeyView(string Kid, string Algorithm, DateTimeOffset Created, DateTimeOffset? Retired);

    public static async Task<Ok<List<KeyView>>> ListAsync(PortcullisDb db, CancellationToken ct)
    {
        var keys = await db.SigningKeys.AsNoTracking().Where(k => k.Use == KeyRing.SigningUse)
            .Select(k => new KeyView(k.KeyId, k.Algorithm, k.CreatedAt, k.RetiredAt)).ToListAsync(ct);
        return TypedResults.Ok(keys.OrderByDescending(k => k.Created).ToList());
    }

    public static async Task<Ok<KeyView>> RotateAsync(PortcullisDb db, KeyRing keys, Audit.AuditLog audit, CancellationToken ct)
    {
        var key = await keys.RotateAsync(db, audit, ct);
        await keys.ReloadAsync(db, ct);
        return TypedResults.Ok(new KeyView(key.KeyId, key.Algorithm, key.CreatedAt, null));
    }
}
