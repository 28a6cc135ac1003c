using OpenIddict.Abstractions;
using OpenIddict.Server;
using Portcullis.Accounts;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// RFC 7009 revocation of a refresh token ends its whole session (the OpenIddict authorization and every token of
/// it), and the session's access tokens stop working at once. Revoking an access token denylists its <c>jti</c>.
/// </summary>
public sealed class RevokeSessionWithToken(SessionTerminator sessions) : IOpenIddictServerHandler<HandleRevocationRequestContext>
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
        await sessions.EndSessionAsync(principal.GetAuthorizationId(), jti, context.CancellationToken);
    }
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
