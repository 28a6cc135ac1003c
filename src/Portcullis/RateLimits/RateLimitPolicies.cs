using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.RateLimits;

/// <summary>
/// The reserved rate-limit policy names every endpoint declares (a test enforces it), and the wiring: two
/// middleware phases acquiring <see cref="RateLimitRegistry"/>'s limits (per IP before authentication, per user or
/// client after it), 429 problem answers with Retry-After, and RateLimit headers on every limited endpoint. The client
/// address they key on is Hosting's (ClientAddress.cs).
/// <para>
/// Owns the configured policies and their limiters (<see cref="RateLimitRegistry"/>), where counters live
/// (<see cref="IRateLimitStore"/>), and the per-account login throttle (<see cref="LoginThrottle"/>).
/// </para>
/// <para>
/// Uses Hosting (the client address after trusted proxies, problem types, log event ids), Audit (refusals,
/// aggregated) and Accounts (username normalization for the throttle's key).
/// </para>
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
        services.TryAddSingleton<IRateLimitStore, InProcessRateLimitStore>();
        services.AddSingleton<RateLimitRegistry>();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<RateLimitRegistry>((options, registry) =>
        {
            // Enforcement is Portcullis's two-phase middleware below; the names are registered so endpoints (and
            // gateway routes) can declare them (RequireRateLimiting) and the framework finds them.
            foreach (var name in registry.PolicyNames)
            {
                options.AddPolicy(name, _ => RateLimitPartition.GetNoLimiter(string.Empty));
            }

            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests; // never the default 503
        });
        return services;
    }

    /// <summary>
    /// The limits keyed by client IP, route or nothing (and the global concurrency cap): after routing, BEFORE
    /// authentication, so floods of bad tokens are counted and refused without a token being checked.
    /// </summary>
    public static WebApplication UsePortcullisIpRateLimiting(this WebApplication app) => app.UsePhase(beforeAuthentication: true);

    /// <summary>The limits keyed by user or client id: after authentication and authorization (they need the user).</summary>
    public static WebApplication UsePortcullisRateLimiting(this WebApplication app) => app.UsePhase(beforeAuthentication: false);

    private static WebApplication UsePhase(this WebApplication app, bool beforeAuthentication)
    {
        var registry = app.Services.GetRequiredService<RateLimitRegistry>();
        app.Use(async (context, next) =>
        {
            var acquired = await registry.AcquireAsync(context, beforeAuthentication, context.RequestAborted);
            try
            {
                if (!acquired.IsAcquired)
                {
                    await RejectAsync(context, registry, acquired, beforeAuthentication);
                    return;
                }

                if (acquired.Leases!.Length > 0 || beforeAuthentication)
                {
                    // Before authentication: the fields for what was counted so far (a 401 carries them too);
                    // after: all of them, overwriting, when this phase counted anything.
                    registry.WriteHeaders(context, retryAfter: null, refusedBy: null, afterAuthentication: !beforeAuthentication);
                }

                await next(context);
            }
            finally
            {
                acquired.Dispose();
            }
        });
        return app;
    }

    /// <summary>The one refusal answer of both phases: 429 problem+json, Retry-After, RateLimit fields, log and audit.</summary>
    private static async Task RejectAsync(HttpContext http, RateLimitRegistry registry, RateLimitRegistry.Acquired refused, bool beforeAuthentication)
    {
        var retry = refused.Refusal!.TryGetMetadata(MetadataName.RetryAfter, out var after) && after > TimeSpan.Zero ? after : TimeSpan.FromSeconds(1);
        registry.Rejected(http, refused.RefusedBy);
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests; // never 503
        http.Response.Headers.RetryAfter = RateLimitRegistry.Seconds(retry);
        registry.WriteHeaders(http, retry, refused.RefusedBy, afterAuthentication: !beforeAuthentication);
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests; try again later.", Type = ProblemTypes.TooManyRequests },
        });
    }
}
