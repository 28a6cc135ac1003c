using Microsoft.EntityFrameworkCore;
using OpenIddict.Server;
using Portcullis.Storage;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// Everything a token grant writes — a password login's session, a refresh's claim of the old token
/// (<see cref="RedeemRefreshTokenOnce"/>), the new token entries, the redemption, the audit event staged for it — is
/// committed as one transaction, just before the response is sent (the endpoint and the claim open it with
/// <see cref="BeginAsync"/>; the sign-in opens it otherwise). OpenIddict's stores save each of those on its own, so a
/// refresh or a password login made four to five commits, each waiting for the disk flush (SQLite's
/// <c>synchronous=FULL</c>, PostgreSQL's <c>fsync</c>). One commit is also all-or-nothing: a failure part-way leaves no
/// half-issued set (say, an old refresh token redeemed and no new one stored). On SQLite the request first waits for
/// its turn (<see cref="WriteLease"/>); the transaction then begins <c>IMMEDIATE</c> (Microsoft.Data.Sqlite's default),
/// taking the write lock at once, so a read inside it cannot meet a concurrent write later (<c>SQLITE_BUSY_SNAPSHOT</c>).
/// A sign-in rejected part-way rolls back (<see cref="RollbackOnError"/>); a refresh the endpoint refuses keeps its
/// claim (<see cref="CommitClaimOnChallenge"/>); after an exception the request scope's context rolls back when
/// disposed, and the scoped lease gives the turn back.
/// </summary>
public static class SignInTransaction
{
    public static OpenIddictServerHandlerDescriptor Begin { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseScopedHandler<BeginHandler>()
            .SetOrder(OpenIddictServerHandlers.ValidateSignInDemand.Descriptor.Order + 500) // before the first write (RedeemTokenEntry)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public static OpenIddictServerHandlerDescriptor Commit { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .UseScopedHandler<CommitHandler>()
            // After the last token is generated and before the response is applied (ApplyTokenResponse, which also ends
            // the chain): a client never receives a token whose entry is not committed. A test checks the order.
            .SetOrder(OpenIddictServerHandlers.AttachSignInParameters.Descriptor.Order + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    /// <summary>
    /// A sign-in rejected part-way stops the chain before <see cref="Commit"/>: the error response rolls back what the
    /// sign-in wrote, first, so that the write lock is not held while the error is answered and nothing written
    /// while answering it (an audit event) joins the doomed transaction.
    /// </summary>
    public static OpenIddictServerHandlerDescriptor RollbackOnError { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessErrorContext>()
            .UseScopedHandler<RollbackHandler>()
            .SetOrder(int.MinValue + 50_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public sealed class RollbackHandler(PortcullisDb db, WriteLease lease) : IOpenIddictServerHandler<ProcessErrorContext>
    {
        public async ValueTask HandleAsync(ProcessErrorContext context) => await RollbackAsync(db, lease);
    }

    /// <summary>Rolls back the request's write transaction, if open, and gives the write turn back.</summary>
    public static async Task RollbackAsync(PortcullisDb db, WriteLease lease)
    {
        if (db.Database.CurrentTransaction is { } transaction)
        {
            await transaction.RollbackAsync(CancellationToken.None);
            await transaction.DisposeAsync();
            db.ChangeTracker.Clear(); // what the sign-in staged is gone with it
        }

        lease.Release();
    }

    /// <summary>
    /// The token endpoint refused a refresh after its claim (the user is disabled, the session is past its absolute
    /// lifetime): the refusal is a challenge, not an error, and the claim is all the transaction holds. It is committed
    /// — a refused refresh token stays spent, as it was when the claim was a transaction of its own — and the turn is
    /// given back before the refusal is answered.
    /// </summary>
    public static OpenIddictServerHandlerDescriptor CommitClaimOnChallenge { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessChallengeContext>()
            .UseScopedHandler<ChallengeHandler>()
            .SetOrder(int.MinValue + 50_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public sealed class ChallengeHandler(PortcullisDb db, WriteLease lease) : IOpenIddictServerHandler<ProcessChallengeContext>
    {
        public async ValueTask HandleAsync(ProcessChallengeContext context)
        {
            if (db.Database.CurrentTransaction is { } transaction)
            {
                await transaction.CommitAsync(CancellationToken.None);
                await transaction.DisposeAsync();
            }

            lease.Release();
        }
    }

    public sealed class BeginHandler(PortcullisDb db, WriteLease lease) : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            if (context.EndpointType == OpenIddictServerEndpointType.Token && !context.IsRejected)
            {
                await BeginAsync(db, lease, context.CancellationToken);
            }
        }
    }

    /// <summary>Begins the request's write transaction unless one is open (a refresh opens it for its claim).</summary>
    public static async Task BeginAsync(PortcullisDb db, WriteLease lease, CancellationToken ct)
    {
        if (db.Database.CurrentTransaction is null)
        {
            await lease.AcquireAsync(db, ct);
            await db.Database.BeginTransactionAsync(ct);
        }
    }

    public sealed class CommitHandler(PortcullisDb db, WriteLease lease) : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            if (db.Database.CurrentTransaction is not { } transaction)
            {
                return;
            }

            await db.SaveChangesAsync(context.CancellationToken); // anything still staged (an audit event) goes with it
            await transaction.CommitAsync(context.CancellationToken);
            await transaction.DisposeAsync();
            lease.Release();
        }
    }
}
