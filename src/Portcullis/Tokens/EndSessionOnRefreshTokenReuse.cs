using OpenIddict.Abstractions;
using OpenIddict.Server;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

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

    [LoggerMessage(EventId = EventIds.Tokens.RefreshTokenReuse, EventName = "authn_token_reuse", Level = LogLevel.Warning,
        Message = "authn_token_reuse: a redeemed refresh token was presented again; session {SessionId} of user {UserId} was ended.")]
    private static partial void LogTokenReuse(ILogger logger, string? userId, string? sessionId);
}
