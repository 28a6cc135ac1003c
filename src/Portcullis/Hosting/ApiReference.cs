using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Portcullis.Access;
using Portcullis.RateLimits;
using Scalar.AspNetCore;

namespace Portcullis.Hosting;

/// <summary>The API reference. Section <c>Api</c>.</summary>
public sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>
    /// Serve the OpenAPI document and the interactive reference page to anyone, without a token. Default true in the
    /// Development environment, false otherwise (HDR-13): the document is then served to signed-in callers only and
    /// the page is not served.
    /// </summary>
    public bool? PublicDocs { get; set; }

    internal bool DocsArePublic => PublicDocs == true;
}

/// <summary>
/// The API reference: the OpenAPI document at <see cref="DocumentPath"/> (the mapped endpoints, plus the OAuth and
/// OpenID Connect endpoints OpenIddict serves, plus the security schemes), and Scalar's interactive page at
/// <see cref="PagePath"/>, whose scripts are served from the binary under a policy of their own.
/// </summary>
public static class ApiReference
{
    public const string DocumentPath = "/openapi/v1.json";
    public const string PagePath = "/openapi/v1";

    public static IServiceCollection AddPortcullisApiReference(this IServiceCollection services)
    {
        services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section)
            .PostConfigure<IHostEnvironment>((options, environment) => options.PublicDocs ??= environment.IsDevelopment());
        services.AddOpenApi(openApi =>
        {
            openApi.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                // Each operation states the permission it needs (x-required-permission), for humans and generators.
                if (metadata.OfType<PermissionMetadata>().FirstOrDefault() is { } permission)
                {
                    operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
                    operation.Extensions["x-required-permission"] = new JsonNodeExtension(permission.Permission);
                }

                // ... and whether it takes a token: everything but the documented anonymous endpoints does.
                if (!metadata.OfType<IAllowAnonymous>().Any())
                {
                    operation.Security = OAuthDocument.Requirements(context.Document);
                }

                return Task.CompletedTask;
            });
            openApi.AddDocumentTransformer<OAuthDocument>();
        });
        return services;
    }

    public static WebApplication MapApiReference(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value;
        var document = app.MapOpenApi("/openapi/{documentName}.json");
        if (!options.DocsArePublic)
        {
            // For signed-in callers only (HDR-13): anonymous scanners learn nothing from it. No page either: a browser
            // holds no bearer token to fetch the document with (docs/configuration.md says how to read it instead).
            document.RequireAuthorization(Policies.User).RequireRateLimiting(RateLimitPolicies.Authenticated);
            return app;
        }

        document.AllowAnonymous().RequireRateLimiting(RateLimitPolicies.Anonymous);
        app.MapScalarApiReference("/openapi", scalar => scalar
                .WithTitle("Portcullis API")
                .WithOpenApiRoutePattern(DocumentPath)
                // Nothing from another origin: no web fonts from Scalar's CDN, no telemetry, agent or MCP calls.
                .DisableDefaultFonts()
                .DisableTelemetry()
                .DisableAgent()
                .DisableMcp()
                .AddPreferredSecuritySchemes(OAuthDocument.BearerScheme)
                // A fresh nonce per request on each script tag, matched by the page's own policy below.
                .WithNonce())
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Anonymous)
            .Add(endpoint =>
            {
                var inner = endpoint.RequestDelegate!;
                endpoint.RequestDelegate = http =>
                {
                    http.Response.OnStarting(() =>
                    {
                        http.Response.Headers.ContentSecurityPolicy = PagePolicy(http.Items[ScalarOptions.NonceHttpContextItemKey] as string);
                        return Task.CompletedTask;
                    });
                    return inner(http);
                };
            });
        return app;
    }

    /// <summary>
    /// The reference page's policy, for that page only: its scripts come from this origin or carry the response's
    /// nonce (never 'unsafe-inline' for script); it fetches only from this origin; it is never framed. Scalar inserts
    /// style elements and style attributes from script, without the nonce (chromium blocks the page's layout under
    /// style-src 'self' 'nonce-…'), so style needs 'unsafe-inline'; a style cannot run code.
    /// </summary>
    internal static string PagePolicy(string? nonce) =>
        "default-src 'none'; script-src 'self'" + (nonce is null ? "" : $" 'nonce-{nonce}'")
        + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'"
        + "; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>What <c>doctor</c> says about the API reference.</summary>
    public static Doctor.Finding Check(ApiOptions options, IHostEnvironment environment) =>
        !options.DocsArePublic
            ? new(Doctor.Severity.Info, "public-docs", $"The API reference ({DocumentPath}) is served to signed-in callers only; the interactive page is off.",
                "Set Api:PublicDocs=true to serve both without a token (e.g. on a staging instance).")
            : environment.IsProduction()
                ? new(Doctor.Severity.Medium, "public-docs", $"Api:PublicDocs is on in Production: anyone can read the API description ({DocumentPath}, page at {PagePath}).",
                    "Set Api:PublicDocs=false unless publishing the API description is intended.")
                : new(Doctor.Severity.Info, "public-docs", $"The API reference is public: {DocumentPath} and the page at {PagePath}.",
                    "Nothing to do outside Production.");
}
