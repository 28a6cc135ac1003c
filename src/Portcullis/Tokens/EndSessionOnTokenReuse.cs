using System.Security.Claims;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// SES-02 and RFC 9700 §4.5: a refresh token or an authorization code presented after it was redeemed is treated as
/// stolen. OpenIddict then revokes the token chain, but the session's access tokens are self-contained JWTs and would
/// live on until they expire; this ends the whole session (authorization, its tokens, and its access tokens via the
/// <c>sid</c> denylist) and logs <c>authn_token_reuse</c> or <c>authn_code_replay</c>. It runs just before OpenIddict's
/// own entry check, which rejects the request (handlers after a rejection do not run).
/// </summary>
public sealed partial class EndSessionOnTokenReuse(
    IOpenIddictTokenManager tokens, SessionTerminator sessions, AuditLog audit, ILogger<EndSessionOnTokenReuse> logger)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<EndSessionOnTokenReuse>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.IsRejected || context.Principal is not { } principal || string.IsNullOrEmpty(context.TokenId)
            || !(principal.HasTokenType(TokenTypeIdentifiers.RefreshToken) || principal.HasTokenType(TokenTypeIdentifiers.Private.AuthorizationCode))
            || await tokens.FindByIdAsync(context.TokenId, context.CancellationToken) is not { } entry
            || !await tokens.HasStatusAsync(entry, Statuses.Redeemed, context.CancellationToken))
        {
            return;
        }

        var code = principal.HasTokenType(TokenTypeIdentifiers.Private.AuthorizationCode);

        // The same rule as OpenIddict's: inside the reuse leeway (zero here) a redeemed refresh token is not a reuse. A
        // code has no leeway.
        var redeemed = await tokens.GetRedemptionDateAsync(entry, context.CancellationToken);
        if (!code && context.Options.RefreshTokenReuseLeeway is { } leeway && (redeemed is null || context.Options.TimeProvider.GetUtcNow() < redeemed + leeway))
        {
            return;
        }

        var sessionId = principal.GetAuthorizationId() ?? await tokens.GetAuthorizationIdAsync(entry, context.CancellationToken);
        await EndAsync(principal, sessionId, code, context.CancellationToken);
    }

    /// <summary>Ends the session a replayed token or code belongs to, with its log line and audit event.</summary>
    public async Task EndAsync(ClaimsPrincipal principal, string? sessionId, bool code, CancellationToken ct)
    {
        var user = principal.GetClaim(Claims.Subject);
        if (code)
        {
            LogCodeReplay(logger, user, sessionId);
        }
        else
        {
            LogTokenReuse(logger, user, sessionId);
        }

        audit.Record(code ? AuditEvents.CodeReplayed : AuditEvents.TokenReuse, AuditOutcomes.Denied, $"session:{sessionId}",
            new { user, client = principal.GetPresenters().FirstOrDefault() }, actor: "anonymous");
        await sessions.EndSessionAsync(sessionId, accessTokenId: null, ct);
    }

    [LoggerMessage(EventId = EventIds.Tokens.RefreshTokenReuse, EventName = "authn_token_reuse", Level = LogLevel.Warning,
        Message = "authn_token_reuse: a redeemed refresh token was presented again; session {SessionId} of user {UserId} was ended.")]
    private static partial void LogTokenReuse(ILogger logger, string? userId, string? sessionId);

    [LoggerMessage(EventId = EventIds.Tokens.AuthorizationCodeReplay, EventName = "authn_code_replay", Level = LogLevel.Warning,
        Message = "authn_code_replay: a redeemed authorization code was presented again; session {SessionId} of user {UserId} was ended.")]
    private static partial void LogCodeReplay(ILogger logger, string? userId, string? sessionId);
}
