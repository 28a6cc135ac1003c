using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// RFC 9700 §2.1.1: PKCE with S256 for every authorization request. Clients are registered with OpenIddict's PKCE
/// requirement, and <c>plain</c> is not offered; the one exception is a confidential client registered with
/// <see cref="ClientSettings.PkceOptional"/>, which must then send a <c>nonce</c> (the ID token binds the code to the
/// session). This handler holds that rule even for a client whose stored requirement was edited by hand.
/// </summary>
public sealed class RequireNonceWithoutPkce(IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ValidateAuthorizationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateAuthorizationRequestContext>()
            .UseScopedHandler<RequireNonceWithoutPkce>()
            .SetOrder(int.MaxValue - 100_000) // after OpenIddict's own checks, which identify the client
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateAuthorizationRequestContext context)
    {
        if (context.IsRejected || !string.IsNullOrEmpty(context.Request.CodeChallenge))
        {
            return;
        }

        var application = await applications.FindByClientIdAsync(context.ClientId!, context.CancellationToken);
        var optional = application is not null
            && await applications.HasClientTypeAsync(application, ClientTypes.Confidential, context.CancellationToken)
            && (await applications.GetSettingsAsync(application, context.CancellationToken)).TryGetValue(ClientSettings.PkceOptional, out var value)
            && value == "true";
        if (!optional)
        {
            context.Reject(Errors.InvalidRequest, "The code_challenge parameter is required (PKCE with S256).");
        }
        else if (string.IsNullOrEmpty(context.Request.Nonce))
        {
            context.Reject(Errors.InvalidRequest, "The nonce parameter is required when PKCE is not used.");
        }
    }
}

/// <summary>Portcullis's own client settings (OpenIddict application settings).</summary>
public static class ClientSettings
{
    /// <summary>A client of the operator's own: no consent screen; with the grant-type permission, the password grant.</summary>
    public const string FirstParty = "portcullis:first_party";

    /// <summary>A confidential client that may leave PKCE out, and must then send a nonce (RFC 9700 §2.1.1).</summary>
    public const string PkceOptional = "portcullis:pkce_optional";
}
