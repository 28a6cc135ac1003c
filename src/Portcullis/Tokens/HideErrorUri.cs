using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

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
