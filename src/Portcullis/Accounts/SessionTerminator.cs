using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// Ends sessions. A session is an OpenIddict authorization: its refresh-token family and the access tokens
/// issued under it (they carry its id as <c>sid</c>). Each method is one transaction.
/// </summary>
public sealed class SessionTerminator(
    PortcullisDb db, RevocationState revocations,
    IOpenIddictAuthorizationManager authorizations, IOpenIddictTokenManager tokens)
{
    /// <summary>Ends one session, and denylists one access token if given.</summary>
    public async Task EndSessionAsync(string? sessionId, string? accessTokenId, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (!string.IsNullOrEmpty(sessionId))
        {
            if (await authorizations.FindByIdAsync(sessionId, ct) is { } authorization)
            {
                await authorizations.TryRevokeAsync(authorization, ct);
            }

            await tokens.RevokeByAuthorizationIdAsync(sessionId, ct);
            revocations.Add(db, RevocationKinds.Session, sessionId);
        }

        if (!string.IsNullOrEmpty(accessTokenId))
        {
            revocations.Add(db, RevocationKinds.AccessToken, accessTokenId);
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>
    /// Ends every session of a user and kills their live access tokens by moving the security epoch on.
    /// Used by "log out everywhere", password change, disable and delete. <paramref name="change"/> runs in the
    /// same transaction (e.g. the new password hash).
    /// </summary>
    public async Task EndAllSessionsAsync(User user, Func<Task>? change, CancellationToken ct)
    {
        // Joins the caller's transaction when there is one (admin changes hold a StoreLocks lock until they commit).
        var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        await using (own)
        {
            if (change is not null)
            {
                await change();
            }

            user.SecurityEpoch++;
            user.SecurityStamp = Guid.NewGuid().ToString("N");
            await authorizations.RevokeBySubjectAsync(user.Id.ToString(), ct);
            await tokens.RevokeBySubjectAsync(user.Id.ToString(), ct);
            revocations.Add(db, RevocationKinds.User, user.Id.ToString());
            await db.SaveChangesAsync(ct);
            if (own is not null)
            {
                await own.CommitAsync(ct);
            }
        }

        revocations.InvalidateUser(user.Id);
    }
}
