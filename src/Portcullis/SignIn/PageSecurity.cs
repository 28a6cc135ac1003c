using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.Net.Http.Headers;

namespace Portcullis.SignIn;

/// <summary>
/// Every page: a strict Content-Security-Policy (nothing inline, nothing from another origin, no framing), no caching,
/// and a form post accepted only from this origin (antiforgery checks the token; this also refuses a post whose
/// <c>Origin</c> is another site's, RFC 6454 §7). A page that sends a form to another origin — a consent answer is
/// redirected to the client — adds that origin to <c>form-action</c> through <see cref="AllowFormTarget"/>.
/// </summary>
public sealed class PageSecurity : IAsyncPageFilter, IOrderedFilter
{
    private const string FormTargetsKey = "portcullis:form-targets";

    // First among the page filters. Antiforgery is an authorization filter and runs before any of them: a post without
    // its token is refused there (400); this refuses one that has a token but comes from another origin (403).
    public int Order => -1000;

    public static string Policy(IEnumerable<string> formTargets) =>
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'"
        + string.Concat(formTargets.Select(t => " " + t))
        + "; frame-ancestors 'none'; base-uri 'none'";

    /// <summary>Lets this response's forms (and the redirects that follow them) go to <paramref name="uri"/>'s origin.</summary>
    public static void AllowFormTarget(HttpContext http, Uri uri)
    {
        if (!uri.IsAbsoluteUri)
        {
            return;
        }

        var origin = uri.Scheme is "https" or "http" ? uri.GetLeftPart(UriPartial.Authority) : uri.Scheme + ":";
        if (http.Items[FormTargetsKey] is not HashSet<string> targets)
        {
            http.Items[FormTargetsKey] = targets = [];
        }

        targets.Add(origin);
    }

    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var http = context.HttpContext;
        if (HttpMethods.IsPost(http.Request.Method) && !IsSameOrigin(http)
            && !context.ActionDescriptor.EndpointMetadata.OfType<AcceptsCrossSitePostAttribute>().Any())
        {
            context.Result = CrossSiteRefusal();
            return;
        }

        http.Response.OnStarting(() =>
        {
            var headers = http.Response.Headers;
            if (string.IsNullOrEmpty(headers.ContentSecurityPolicy))
            {
                // (An OpenIddict form_post answer written by the page's sign-in states its own: FormPostResponsePolicy.)
                headers.ContentSecurityPolicy = Policy(http.Items[FormTargetsKey] as HashSet<string> ?? []);
            }

            headers.CacheControl = "no-store";
            return Task.CompletedTask;
        });
        await next();
    }

    public static ContentResult CrossSiteRefusal() =>
        new() { StatusCode = StatusCodes.Status403Forbidden, Content = "A form from another site was refused.", ContentType = "text/plain; charset=utf-8" };

    public static bool IsSameOrigin(HttpContext http)
    {
        var request = http.Request;

        // A browser says where a request comes from in Sec-Fetch-Site, which no page can set. (Origin is "null" on
        // every form post of a page served with Referrer-Policy: no-referrer, as these are.)
        if (request.Headers["Sec-Fetch-Site"] is { Count: > 0 } site)
        {
            return site.ToString() is "same-origin" or "none";
        }

        if (request.Headers.Origin is { Count: > 0 } origin && origin.ToString() != "null")
        {
            return string.Equals(origin.ToString(), $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase);
        }

        // An opaque origin without Sec-Fetch-Site is refused; no header at all (a non-browser client): antiforgery decides.
        return request.Headers.Origin.Count == 0;
    }
}

/// <summary>
/// A page that takes a request posted from another site — the authorization request by POST (OpenID Connect Core
/// §3.1.2.1), which the relying party's page sends — and therefore checks the origin and antiforgery token of its
/// own state-changing posts itself (<see cref="PageSecurity.IsSameOrigin"/>, <c>IAntiforgery</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class AcceptsCrossSitePostAttribute : Attribute;
