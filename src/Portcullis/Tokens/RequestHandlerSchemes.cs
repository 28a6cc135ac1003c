using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpenIddict.Server.AspNetCore;

namespace Portcullis.Tokens;

/// <summary>
/// OpenIddict's server handler is an authentication request handler: by default the authentication middleware asks
/// it about every request, and it inspects each one to see whether it is one of its endpoints — a measurable share of
/// the CPU of a gateway request (BENCHMARKS.md), paid by <c>/api/me</c> too. Every OpenIddict endpoint Portcullis enables lives
/// under <see cref="OpenIddictRoots"/> (<c>RequestHandlerSchemesTests</c> checks the configured endpoint list against
/// them), so elsewhere the handler could only conclude "not mine" and is not asked. Authentication of API calls (the
/// default JwtBearer scheme) is unaffected.
/// </summary>
public sealed class RequestHandlerSchemes(IOptions<AuthenticationOptions> options, IHttpContextAccessor http) : AuthenticationSchemeProvider(options)
{
    public static readonly PathString[] OpenIddictRoots = ["/connect", "/.well-known"];

    // The base provider hands out the same array until schemes change; the filtered copy is kept beside it, in one
    // object so a reader never pairs one with the other's stale partner. No allocation per request.
    private sealed record Filtered(IEnumerable<AuthenticationScheme> From, IEnumerable<AuthenticationScheme> Others);

    private volatile Filtered? _filtered;

    public override async Task<IEnumerable<AuthenticationScheme>> GetRequestHandlerSchemesAsync()
    {
        var schemes = await base.GetRequestHandlerSchemesAsync();
        if (http.HttpContext is not { } context || IsOpenIddictPath(context.Request.Path))
        {
            return schemes;
        }

        var filtered = _filtered;
        if (filtered is null || !ReferenceEquals(filtered.From, schemes))
        {
            filtered = new(schemes, schemes.Where(s => s.HandlerType != typeof(OpenIddictServerAspNetCoreHandler)).ToArray());
            _filtered = filtered;
        }

        return filtered.Others;
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
