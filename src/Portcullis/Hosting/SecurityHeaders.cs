using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Portcullis.Hosting;

/// <summary>
/// The outermost middleware: plain HTTP never reaches the API (TLS-04), TRACE-like methods are refused, and every
/// response carries the security headers, errors included (HSTS on 4xx/5xx too: TLS-05).
/// </summary>
public sealed class SecurityHeaders(RequestDelegate next, IOptions<TlsOptions> tls)
{
    private readonly string _hsts = $"max-age={tls.Value.HstsMaxAgeSeconds}; includeSubDomains";

    public Task InvokeAsync(HttpContext http)
    {
        var response = http.Response;
        var isHttps = http.Request.IsHttps;
        response.OnStarting(() =>
        {
            var headers = response.Headers;
            if (isHttps)
            {
                headers.StrictTransportSecurity = _hsts;
            }

            headers.XContentTypeOptions = "nosniff";
            if (string.IsNullOrEmpty(headers.ContentSecurityPolicy))
            {
                // A page states its own, as strict (SignIn/PageSecurity.cs); everything else loads nothing.
                headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
            }

            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
            if (string.IsNullOrEmpty(headers.CacheControl))
            {
                headers.CacheControl = "no-store";
            }

            headers.Remove("X-Powered-By");
            return Task.CompletedTask;
        });

        if (!isHttps)
        {
            // No redirect: a redirect would teach clients that sending credentials over HTTP works.
            http.Response.Headers.Connection = "close";
            return Results.Problem(statusCode: 400, title: "Portcullis is served over HTTPS only.", type: ProblemTypes.HttpsRequired)
                .ExecuteAsync(http);
        }

        if (IsAmbiguouslyFramed(http.Request))
        {
            http.Response.Headers.Connection = "close";
            return Results.Problem(statusCode: 400, title: "The request has both Content-Length and Transfer-Encoding.", type: ProblemTypes.AmbiguousFraming)
                .ExecuteAsync(http);
        }

        var method = http.Request.Method;
        if (HttpMethods.IsTrace(method) || HttpMethods.IsConnect(method) || method.Equals("TRACK", StringComparison.OrdinalIgnoreCase))
        {
            http.Response.Headers.Allow = "GET, POST, PUT, PATCH, DELETE";
            return Results.Problem(statusCode: 405, title: "The method is not allowed.", type: ProblemTypes.MethodNotAllowed)
                .ExecuteAsync(http);
        }

        return next(http);
    }

    /// <summary>
    /// HDR-10: Kestrel lets Transfer-Encoding win over Content-Length, moving the latter to <c>X-Content-Length</c>, and
    /// serves the request. Both framings at once are a request-smuggling probe, so the request is refused unread.
    /// </summary>
    private static bool IsAmbiguouslyFramed(HttpRequest request) =>
        request.Headers.ContainsKey(HeaderNames.TransferEncoding)
        && (request.ContentLength is not null || request.Headers.ContainsKey("X-Content-Length"));
}
