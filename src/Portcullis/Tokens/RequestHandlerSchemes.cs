using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpenIddict.Server.AspNetCore;

namespace Portcullis.Tokens;

/// <summary>
/// OpenIddict's server handler is an authentication request handler: by default the authentication middleware asks
/// it about every request, and it inspects each one to see whether it is one of its endpoints — measured at about 7%
/// of the CPU of a gateway request, and paid by <c>/api/me</c> too. Every OpenIddict endpoint Portcullis enables lives
/// under <see cref="OpenIddictRoots"/> (<c>RequestHandlerSchemesTests</c> checks the configured endpoint list against
/// them), so elsewhere the handler could only conclude "not mine" and is not asked. Authentication of API calls (the
/// default JwtBearer scheme) is unaffected.
/// </summary>
public sealed class RequestHandlerSchemes(IOptions<AuthenticationOptions> options, IHttpContextAccessor http) : AuthenticationSchemeProvider(options)
{
    public static readonly PathString[] OpenIddictRoots = ["/connect", "/.well-known"];

    public override async Task<IEnumerable<AuthenticationScheme>> GetRequestHandlerSchemesAsync()
    {
        var schemes = await base.GetRequestHandlerSchemesAsync();
        if (http.HttpContext is not { } context || IsOpenIddictPath(context.Request.Path))
        {
            return schemes;
        }

        var others = schemes.Where(s => s.HandlerType != typeof(OpenIddictServerAspNetCoreHandler)).ToArray();
        return others.Length == 0 ? [] : others;
    }

    public static bool IsOpenIddictPath(PathString path)
    {
        foreach (var root in OpenIddictRoots)
        {
            if (path.StartsWithSegments(root, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
