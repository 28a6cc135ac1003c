using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// Discovery lists the <c>acr</c> values the tokens carry (<c>acr_values_supported</c>, OpenID Connect Discovery §3):
/// <see cref="TokenPrincipals.AuthenticationContexts"/>. A request's <c>acr_values</c> is still ignored.
/// </summary>
public sealed class AdvertiseAcrValues : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
            .UseSingletonHandler<AdvertiseAcrValues>()
            .SetOrder(int.MaxValue - 100_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        context.Metadata[OpenIddictConstants.Metadata.AcrValuesSupported] = new OpenIddictParameter([.. TokenPrincipals.AuthenticationContexts.All]);
        return ValueTask.CompletedTask;
    }
}
