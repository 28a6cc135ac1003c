using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// S07 / VAL-01: a password grant that also carries a refresh token or an authorization code is refused with
/// <c>invalid_request</c>, never answered with the extra value ignored: the client is confused, or someone is trying
/// to make the server adopt a token of their choosing.
/// </summary>
public sealed class RefuseForeignGrantParameters : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseSingletonHandler<RefuseForeignGrantParameters>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateResourceOwnerCredentialsParameters.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        if (request.IsPasswordGrantType() && (request.RefreshToken is not null || request.Code is not null))
        {
            context.Reject(error: Errors.InvalidRequest, description: "The request has a parameter the password grant does not take.");
        }

        return default;
    }
}
