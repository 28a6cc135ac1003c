using System.Security.Cryptography;
using System.Text;
using OpenIddict.Server;
using Microsoft.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// <c>response_mode=form_post</c> (the default of ASP.NET Core's OpenID Connect handler): OpenIddict answers with a page
/// whose one inline script posts the code to the client. The default policy (<c>default-src 'none'</c>) would block
/// that script and leave a blank page, so this response allows exactly that script by its hash, and a form post to the
/// client's redirect URI only — nothing else.
/// </summary>
public sealed class FormPostResponsePolicy : IOpenIddictServerHandler<ApplyAuthorizationResponseContext>
{
    // The exact text of the script OpenIddict writes (OpenIddictServerAspNetCoreHandlers.Authentication.ProcessFormPostResponse).
    private static readonly string ScriptHash =
        "'sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes("document.form.submit();"))) + "'";

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ApplyAuthorizationResponseContext>()
            .UseSingletonHandler<FormPostResponsePolicy>()
            // After OpenIddict has attached the validated redirect URI and inferred the response mode.
            .SetOrder(OpenIddictServerHandlers.Authentication.InferResponseMode.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(ApplyAuthorizationResponseContext context)
    {
        if (context.ResponseMode == ResponseModes.FormPost
            && !string.IsNullOrEmpty(context.RedirectUri)
            && Uri.TryCreate(context.RedirectUri, UriKind.Absolute, out var target)
            && context.Transaction.GetHttpRequest()?.HttpContext.Response is { } response)
        {
            var origin = target.Scheme is "https" or "http" ? target.GetLeftPart(UriPartial.Authority) : target.Scheme + ":";
            response.Headers.ContentSecurityPolicy =
                $"default-src 'none'; script-src {ScriptHash}; form-action {origin}; frame-ancestors 'none'; base-uri 'none'";
        }

        return ValueTask.CompletedTask;
    }
}
