using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Portcullis.Tokens;

namespace Portcullis.Hosting;

/// <summary>Cross-origin calls from browsers (CORS). Section <c>Cors</c>. Off unless <see cref="Origins"/> lists one.</summary>
public sealed class CrossOriginOptions
{
    public const string Section = "Cors";

    /// <summary>
    /// The exact origins (<c>https://app.example</c>, <c>https://app.example:8443</c>) whose pages may call the API.
    /// Default none: no CORS header is ever sent. No wildcard, pattern, path or <c>null</c>; <c>http://</c> only for
    /// localhost and loopback addresses.
    /// </summary>
    public List<string> Origins { get; set; } = [];

    /// <summary>Send <c>Access-Control-Allow-Credentials: true</c> (cookies, TLS client certificates). Default false:
    /// the API takes bearer tokens, which need no credentials mode.</summary>
    public bool AllowCredentials { get; set; }

    /// <summary>Methods a preflight may ask for. Default GET, POST, PUT, PATCH, DELETE.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>Request headers a preflight may ask for. Default Authorization, Content-Type.</summary>
    public List<string> Headers { get; set; } = [];

    /// <summary>How long a browser may cache a preflight answer. Default 00:10:00; at most 02:00:00 (Chromium's cap).</summary>
    public TimeSpan PreflightMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    internal static readonly string[] DefaultMethods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    internal static readonly string[] DefaultHeaders = ["Authorization", "Content-Type"];

    internal IReadOnlyList<string> EffectiveMethods => Methods.Count > 0 ? Methods : DefaultMethods;

    internal IReadOnlyList<string> EffectiveHeaders => Headers.Count > 0 ? Headers : DefaultHeaders;
}

/// <summary>
/// Every unusable CORS setting, by its key (HDR-06): an allowlist entry must be an origin exactly as a browser sends it
/// in <c>Origin</c>, because it is compared byte for byte; anything broader is refused rather than guessed at.
/// </summary>
public sealed class CrossOriginOptionsValidator : IValidateOptions<CrossOriginOptions>
{
    private static readonly HashSet<string> KnownMethods = new(StringComparer.Ordinal) { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" };

    public ValidateOptionsResult Validate(string? name, CrossOriginOptions options)
    {
        var failures = new List<string>();
        for (var i = 0; i < options.Origins.Count; i++)
        {
            if (OriginProblem(options.Origins[i]) is { } problem)
            {
                failures.Add($"{CrossOriginOptions.Section}:Origins:{i} ('{options.Origins[i]}') {problem}");
            }
        }

        if (options.AllowCredentials && options.Origins.Count == 0)
        {
            failures.Add($"{CrossOriginOptions.Section}:AllowCredentials is true but {CrossOriginOptions.Section}:Origins is empty: list the origins that may send credentials, or remove AllowCredentials.");
        }

        for (var i = 0; i < options.Methods.Count; i++)
        {
            if (!KnownMethods.Contains(options.Methods[i]))
            {
                failures.Add($"{CrossOriginOptions.Section}:Methods:{i} ('{options.Methods[i]}') is not one of {string.Join(", ", KnownMethods)} (upper case; no '*').");
            }
        }

        for (var i = 0; i < options.Headers.Count; i++)
        {
            var header = options.Headers[i];
            if (header.Length == 0 || header == "*" || !header.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                failures.Add($"{CrossOriginOptions.Section}:Headers:{i} ('{header}') is not a header name: list each one (e.g. Authorization); no '*'.");
            }
        }

        if (options.PreflightMaxAge < TimeSpan.Zero || options.PreflightMaxAge > TimeSpan.FromHours(2))
        {
            failures.Add($"{CrossOriginOptions.Section}:PreflightMaxAge must be between 00:00:00 and 02:00:00.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Why <paramref name="value"/> is not an allowed origin, or null when it is one, written as browsers write it.</summary>
    public static string? OriginProblem(string value)
    {
        const string Form = "write scheme://host[:port] exactly as the browser sends it in Origin, e.g. https://app.example.";
        if (value.Contains('*', StringComparison.Ordinal))
        {
            return "is a wildcard or pattern: list each origin exactly; " + Form;
        }

        if (string.Equals(value.Trim(), "null", StringComparison.OrdinalIgnoreCase))
        {
            return "is never allowed: sandboxed frames and file:// pages all send Origin: null.";
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || string.IsNullOrEmpty(uri.Host))
        {
            return "is not an origin: " + Form;
        }

        if (uri.Scheme == "http" && !uri.IsLoopback)
        {
            return "uses http://, which anyone on the network can impersonate: use https:// (http:// is accepted for localhost and loopback addresses only).";
        }

        var canonical = Canonical(uri);
        if (!string.Equals(value, canonical, StringComparison.Ordinal))
        {
            return uri.UserInfo.Length > 0 || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || value.EndsWith('/')
                ? $"has more than an origin (a path, query or trailing slash): write '{canonical}'."
                : $"is not written as browsers send it: write '{canonical}'.";
        }

        return null;
    }

    /// <summary>The ASCII serialization of the origin (RFC 6454 §6.2): lower-case scheme and host, default port omitted.</summary>
    private static string Canonical(Uri uri) =>
        $"{uri.Scheme}://{(uri.HostNameType == UriHostNameType.IPv6 ? uri.Host : uri.IdnHost).ToLowerInvariant()}{(uri.IsDefaultPort ? "" : ":" + uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture))}";
}

/// <summary>
/// CORS for the endpoints a browser application on another origin needs — the API (<c>/api</c>), the token,
/// revocation and userinfo endpoints, discovery and the key set (<c>/.well-known</c>) — with ASP.NET Core's own
/// middleware and one policy built from <see cref="CrossOriginOptions"/>.
/// <para>
/// The policy applies only to a request whose <c>Origin</c> is on the allowlist (an exact, ordinal match). Any other
/// request is not a CORS request to Portcullis at all: no <c>Access-Control-*</c> header, and an OPTIONS preflight
/// falls through to the 405 every undocumented method gets (HDR-07), exactly as with CORS off (H02).
/// </para>
/// </summary>
public static class CrossOrigin
{
    /// <summary>The paths covered. The sign-in pages and the authorization endpoint are navigations, never CORS calls.</summary>
    private static readonly PathString[] Covered =
        ["/api", "/.well-known", TokenServices.TokenPath, TokenServices.RevocationPath, TokenServices.UserInfoPath];

    public static IServiceCollection AddPortcullisCors(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<CrossOriginOptions>().BindConfiguration(CrossOriginOptions.Section);
        services.AddSingleton<IValidateOptions<CrossOriginOptions>, CrossOriginOptionsValidator>();
        services.AddCors();
        // Replaces the framework's provider (registered with TryAdd): the only source of policies here.
        services.AddSingleton<ICorsPolicyProvider, AllowlistPolicyProvider>();
        return services;
    }

    /// <summary>
    /// After routing and request logging, before the per-IP limits and authentication: a preflight (which carries no
    /// token) is answered here, and every answer an allowed page gets — 401, 403 and 429 included — carries the
    /// headers that let it read the problem details.
    /// </summary>
    public static WebApplication UsePortcullisCors(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<CrossOriginOptions>>().Value.Origins.Count == 0)
        {
            return app; // Off: not even the middleware.
        }

        app.Use((context, next) =>
        {
            if (IsCovered(context.Request.Path))
            {
                // A covered answer depends on Origin whether or not this request sent one, so a shared cache must not
                // hand one origin's answer to another. Runs after CORS's own OnStarting (callbacks run last-added
                // first), so Origin is added once.
                var response = context.Response;
                response.OnStarting(() =>
                {
                    if (!response.Headers.Vary.Any(v => v is not null && v.Contains(HeaderNames.Origin, StringComparison.OrdinalIgnoreCase)))
                    {
                        response.Headers.Append(HeaderNames.Vary, HeaderNames.Origin);
                    }

                    return Task.CompletedTask;
                });
            }

            return next(context);
        });
        app.UseCors();
        return app;
    }

    internal static bool IsCovered(PathString path) => Covered.Any(p => path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase));

    /// <summary>The CORS policy, or null (no CORS processing at all) for a path not covered or an origin not listed.</summary>
    private sealed class AllowlistPolicyProvider : ICorsPolicyProvider
    {
        private readonly CorsPolicy? _policy;
        private readonly HashSet<string> _origins;

        public AllowlistPolicyProvider(IOptions<CrossOriginOptions> options)
        {
            var settings = options.Value;
            _origins = new HashSet<string>(settings.Origins, StringComparer.Ordinal);
            if (_origins.Count == 0)
            {
                return;
            }

            var policy = new CorsPolicyBuilder()
                // Exact, ordinal: the builder's own WithOrigins would lower-case; the validator already refused
                // anything not written as browsers send it. A custom check also makes every answer Vary: Origin.
                .SetIsOriginAllowed(_origins.Contains)
                .WithMethods([.. settings.EffectiveMethods])
                .WithHeaders([.. settings.EffectiveHeaders])
                // What a page may read besides the CORS-safelisted headers: why a call was refused or throttled.
                .WithExposedHeaders(HeaderNames.WWWAuthenticate, HeaderNames.RetryAfter, "RateLimit", "RateLimit-Policy")
                .SetPreflightMaxAge(settings.PreflightMaxAge);
            if (settings.AllowCredentials)
            {
                policy.AllowCredentials();
            }

            _policy = policy.Build();
        }

        public Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName) =>
            Task.FromResult(
                _policy is not null && IsCovered(context.Request.Path) && _origins.Contains(context.Request.Headers.Origin.ToString())
                    ? _policy
                    : null);
    }

    /// <summary>What <c>doctor</c> says about CORS.</summary>
    public static IEnumerable<Doctor.Finding> Check(CrossOriginOptions options)
    {
        if (options.Origins.Count == 0)
        {
            yield return new(Doctor.Severity.Info, "cors", "CORS is off: browsers on other origins cannot call the API.",
                "Nothing to do until a browser application on another origin needs access (then list it in Cors:Origins).");
            yield break;
        }

        var credentials = options.AllowCredentials ? ", with credentials" : "";
        yield return new(Doctor.Severity.Info, "cors", $"CORS is on for {string.Join(", ", options.Origins)}{credentials}: pages there can call /api, the token, revocation and userinfo endpoints and discovery.",
            "Keep Cors:Origins to the origins of your own browser applications.");
        var http = options.Origins.Where(o => o.StartsWith("http://", StringComparison.Ordinal)).ToList();
        if (http.Count > 0)
        {
            yield return new(Doctor.Severity.Medium, "cors-http-origin", $"Cors:Origins has plain-HTTP origin(s) {string.Join(", ", http)}: fine on a developer machine, never in production.",
                "Remove http:// origins outside development.");
        }

        if (options.AllowCredentials)
        {
            yield return new(Doctor.Severity.Low, "cors-credentials", "Cors:AllowCredentials is true: the listed origins' pages may send cookies along; the API needs only bearer tokens.",
                "Set Cors:AllowCredentials=false unless a listed application relies on cookies or client certificates.");
        }
    }
}
