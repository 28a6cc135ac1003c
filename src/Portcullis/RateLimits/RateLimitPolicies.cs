using System.Threading.RateLimiting;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.RateLimits;

/// <summary>
/// The reserved rate-limit policy names every endpoint declares (a test enforces it), and the wiring: the
/// framework's rate-limiting middleware running <see cref="RateLimitRegistry"/>'s chained limiter, 429 problem
/// answers with Retry-After, RateLimit headers on every limited endpoint, and trusted-proxy client addresses.
/// </summary>
public static class RateLimitPolicies
{
    /// <summary>Login, registration, password change and reset: per IP (per account is LoginThrottle's job).</summary>
    public const string Credentials = "credentials";

    /// <summary>The authenticated API: per user.</summary>
    public const string Authenticated = "authenticated";

    /// <summary>Anonymous, cheap endpoints (health, discovery) and requests that match no endpoint: per IP.</summary>
    public const string Anonymous = "anonymous";

    public static readonly string[] All = [Credentials, Authenticated, Anonymous];

    public static IServiceCollection AddPortcullisRateLimiting(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section);
        services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        services.AddSingleton<RateLimitRegistry>();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<RateLimitRegistry>((options, registry) =>
        {
            // Enforcement is the registry's chained global limiter; the names are registered so endpoints can
            // declare them (RequireRateLimiting) and the framework finds them.
            options.GlobalLimiter = registry.Limiter;
            foreach (var name in registry.PolicyNames)
            {
                options.AddPolicy(name, _ => RateLimitPartition.GetNoLimiter(string.Empty));
            }

            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests; // never the default 503
            options.OnRejected = async (rejected, ct) =>
            {
                var http = rejected.HttpContext;
                var retry = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) && after > TimeSpan.Zero ? after : TimeSpan.FromSeconds(1);
                registry.Rejected(http);
                http.Response.Headers.RetryAfter = RateLimitRegistry.Seconds(retry);
                registry.WriteHeaders(http, retry);
                var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests; try again later.", Type = ProblemTypes.TooManyRequests },
                });
            };
        });
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<RateLimitOptions>>((forwarded, limits) =>
        {
            // Only X-Forwarded-For, only from the configured proxies (the defaults trust loopback: cleared), walking
            // from the right until the first address that is not a trusted proxy.
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            forwarded.ForwardLimit = null;
            forwarded.RequireHeaderSymmetry = false;
            foreach (var proxy in limits.Value.TrustedProxies)
            {
                if (RateLimitOptionsValidator.TryParseProxy(proxy, out var address, out var network))
                {
                    if (address is not null)
                    {
                        forwarded.KnownProxies.Add(address);
                    }
                    else
                    {
                        forwarded.KnownIPNetworks.Add(network!.Value);
                    }
                }
            }
        });
        return services;
    }

    /// <summary>
    /// First in the pipeline: with trusted proxies configured, the client address becomes the rightmost untrusted
    /// X-Forwarded-For hop (everything after — logs, LoginThrottle, rate limits — sees it). Without, nothing is read.
    /// </summary>
    public static WebApplication UsePortcullisClientAddress(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }

        return app;
    }

    /// <summary>The limiter, then the RateLimit headers on admitted responses.</summary>
    public static WebApplication UsePortcullisRateLimiting(this WebApplication app)
    {
        app.UseRateLimiter();
        var registry = app.Services.GetRequiredService<RateLimitRegistry>();
        app.Use((context, next) =>
        {
            registry.WriteHeaders(context, retryAfter: null);
            return next(context);
        });
        return app;
    }
}
