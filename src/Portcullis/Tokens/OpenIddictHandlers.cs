using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// RFC 7009 revocation of a refresh token ends its whole session (the OpenIddict authorization and every token of
/// it), and the session's access tokens stop working at once. Revoking an access token denylists its <c>jti</c>.
/// </summary>
public sealed class RevokeSessionWithToken(SessionTerminator sessions, AuditLog audit) : IOpenIddictServerHandler<HandleRevocationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleRevocationRequestContext>()
            .UseScopedHandler<RevokeSessionWithToken>()
            .SetOrder(OpenIddictServerHandlers.Revocation.RevokeToken.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(HandleRevocationRequestContext context)
    {
        var principal = context.GenericTokenPrincipal;
        if (context.IsRejected || principal is null)
        {
            return;
        }

        var jti = principal.GetTokenType() == TokenTypeIdentifiers.AccessToken ? principal.GetClaim(Claims.JwtId) : null;
        audit.Record(AuditEvents.TokenRevoked, AuditOutcomes.Success, $"session:{principal.GetAuthorizationId()}",
            new { via = "revocation_endpoint", tokenType = principal.GetTokenType(), client = context.Request.ClientId },
            actor: principal.GetClaim(Claims.Subject) is { } sub ? $"user:{sub}" : null);
        await sessions.EndSessionAsync(principal.GetAuthorizationId(), jti, context.CancellationToken);
    }
}

/// <summary>
/// SES-02: a refresh token presented after it was redeemed is treated as stolen. OpenIddict then revokes the
/// refresh-token chain, but the session's access tokens are self-contained JWTs and would live on until they expire;
/// this ends the whole session (authorization, its tokens, and its access tokens via the <c>sid</c> denylist) and
/// logs <c>authn_token_reuse</c>. It runs just before OpenIddict's own entry check, which rejects the request
/// (handlers after a rejection do not run).
/// </summary>
public sealed partial class EndSessionOnRefreshTokenReuse(
    IOpenIddictTokenManager tokens, SessionTerminator sessions, AuditLog audit, ILogger<EndSessionOnRefreshTokenReuse> logger)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<EndSessionOnRefreshTokenReuse>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.IsRejected || context.Principal is not { } principal
            || !principal.HasTokenType(TokenTypeIdentifiers.RefreshToken) || string.IsNullOrEmpty(context.TokenId)
            || await tokens.FindByIdAsync(context.TokenId, context.CancellationToken) is not { } entry
            || !await tokens.HasStatusAsync(entry, Statuses.Redeemed, context.CancellationToken))
        {
            return;
        }

        // The same rule as OpenIddict's: inside the reuse leeway (zero here) a redeemed token is not a reuse.
        var redeemed = await tokens.GetRedemptionDateAsync(entry, context.CancellationToken);
        if (context.Options.RefreshTokenReuseLeeway is { } leeway && (redeemed is null || context.Options.TimeProvider.GetUtcNow() < redeemed + leeway))
        {
            return;
        }

        var sessionId = principal.GetAuthorizationId() ?? await tokens.GetAuthorizationIdAsync(entry, context.CancellationToken);
        LogTokenReuse(logger, principal.GetClaim(Claims.Subject), sessionId);
        audit.Record(AuditEvents.TokenReuse, AuditOutcomes.Denied, $"session:{sessionId}",
            new { user = principal.GetClaim(Claims.Subject) }, actor: "anonymous");
        await sessions.EndSessionAsync(sessionId, accessTokenId: null, context.CancellationToken);
    }

    [LoggerMessage(EventId = 2201, EventName = "authn_token_reuse", Level = LogLevel.Warning,
        Message = "authn_token_reuse: a redeemed refresh token was presented again; session {SessionId} of user {UserId} was ended.")]
    private static partial void LogTokenReuse(ILogger logger, string? userId, string? sessionId);
}

/// <summary>OpenIddict links its error documentation in <c>error_uri</c>; it only tells an attacker what runs here.</summary>
#pragma warning disable CA1000 // OpenIddict's handler pattern: the descriptor lives on the handler type.
public sealed class HideErrorUri<TContext> : IOpenIddictServerHandler<TContext> where TContext : BaseRequestContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
            .UseSingletonHandler<HideErrorUri<TContext>>()
            .SetOrder(int.MinValue + 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(TContext context)
    {
        var response = context.Transaction.Response;
        if (response is not null)
        {
            response.ErrorUri = null;
        }

        return ValueTask.CompletedTask;
    }
}
#pragma warning restore CA1000

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
        public async ValueTask HandleAsync(ProcessErrorContext context)
        {
            if (db.Database.CurrentTransaction is { } transaction)
            {
                await transaction.RollbackAsync(CancellationToken.None);
                await transaction.DisposeAsync();
                db.ChangeTracker.Clear(); // what the sign-in staged is gone with it
            }

            lease.Release();
        }
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

/// <summary>
/// SQLite has one writer at a time, and a connection that finds the write lock taken sleeps in SQLite's busy handler
/// — 1, 2, 5, 10, … up to 100 ms between tries — however soon the lock is free again. Under a burst of token grants the
/// lock sat idle while the waiters slept (a refresh answered in ≈ 190 ms at the median with the CPU two-thirds idle).
/// The token endpoint's write transactions therefore queue for one in-process gate first, which hands the lock to the
/// next request the moment a commit releases it; SQLite's busy timeout still covers other writers (background jobs,
/// the CLI). On PostgreSQL, which has row locks and many writers, there is no gate. The lease is scoped: a request
/// that fails between begin and commit releases it when its scope ends.
/// </summary>
public sealed class WriteLease(WriteLease.Gate gate) : IDisposable
{
    /// <summary>The one turn of this server (a singleton: one database per server).</summary>
    public sealed class Gate : IDisposable
    {
        internal SemaphoreSlim Turn { get; } = new(1, 1);

        public void Dispose() => Turn.Dispose();
    }

    private bool _held;

    public async Task AcquireAsync(PortcullisDb db, CancellationToken ct)
    {
        if (_held || !db.Database.IsSqlite())
        {
            return;
        }

        // Bounded like SQLite's own wait: past it, go on and let SQLite's busy timeout decide.
        _held = await gate.Turn.WaitAsync(db.Database.GetCommandTimeout() is { } seconds ? TimeSpan.FromSeconds(seconds) : TimeSpan.FromSeconds(30), ct);
    }

    public void Release()
    {
        if (_held)
        {
            _held = false;
            gate.Turn.Release();
        }
    }

    public void Dispose() => Release();
}
