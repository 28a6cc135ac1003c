using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// S06: a refresh token is redeemed at most once, even by parallel requests and across instances. OpenIddict checks
/// the token's status, then marks it redeemed much later (at sign-in) and treats an already-redeemed entry as fine, so
/// parallel requests that all passed the check all succeeded. Right after OpenIddict's entry check this claims the
/// token with one conditional UPDATE (<c>valid</c> → <c>redeemed</c>); the database lets exactly one request change
/// the row, and every other request is refused with <c>invalid_grant</c>.
/// </summary>
public sealed class RedeemRefreshTokenOnce(PortcullisDb db, WriteLease lease) : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<RedeemRefreshTokenOnce>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.IsRejected || context.EndpointType != OpenIddictServerEndpointType.Token
            || context.Request is not { } request || !request.IsRefreshTokenGrantType()
            || context.Principal is not { } principal || !principal.HasTokenType(TokenTypeIdentifiers.RefreshToken)
            || string.IsNullOrEmpty(context.TokenId))
        {
            return;
        }

        // The claim is the first write of the refresh's transaction (SignInTransaction): a refresh is one commit, and
        // a failure before the new tokens are committed leaves the old one unredeemed, so the client can retry.
        await SignInTransaction.BeginAsync(db, lease, context.CancellationToken);
        var id = context.TokenId;
        var now = context.Options.TimeProvider.GetUtcNow().UtcDateTime;
        var stamp = Guid.NewGuid().ToString();
        var claimed = await db.Set<OpenIddictEntityFrameworkCoreToken>()
            .Where(t => t.Id == id && t.Status == Statuses.Valid)
            .ExecuteUpdateAsync(set => set
                .SetProperty(t => t.Status, Statuses.Redeemed)
                .SetProperty(t => t.RedemptionDate, now)
                .SetProperty(t => t.ConcurrencyToken, stamp), context.CancellationToken);
        if (claimed != 1)
        {
            context.Reject(Errors.InvalidGrant, "The specified refresh token is no longer valid.");
        }
    }
}
