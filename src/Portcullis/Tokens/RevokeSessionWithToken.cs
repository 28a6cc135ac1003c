using OpenIddict.Abstractions;
using OpenIddict.Server;
using Portcullis.Accounts;
using Portcullis.Audit;
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
