using System.Threading.RateLimiting;

namespace Portcullis.RateLimits;

/// <summary>
/// Rate-limit policy names, reserved now so every endpoint states one (a test enforces it). Their limits come
/// with the rate-limiting issue; until then they admit everything. Rejections will answer 429, never 503.
/// </summary>
public static class RateLimitPolicies
{
    /// <summary>Login, registration, password change and reset: per IP and per account.</summary>
    public const string Credentials = "credentials";

    /// <summary>The authenticated API: per user.</summary>
    public const string Authenticated = "authenticated";

    /// <summary>Anonymous, cheap endpoints (health, discovery): per IP.</summary>
    public const string Anonymous = "anonymous";

    public static readonly string[] All = [Credentials, Authenticated, Anonymous];

    public static IServiceCollection AddPortcullisRateLimiting(this IServiceCollection services)
    {
        services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            foreach (var name in All)
            {
                options.AddPolicy(name, _ => RateLimitPartition.GetNoLimiter("all"));
            }
        });
        return services;
    }
}
