using System.Globalization;
using System.Text.RegularExpressions;
using Json.Schema;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing.Patterns;
using Portcullis.RateLimits;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

namespace Portcullis.Gateway;

/// <summary>A route as validated and compiled: its policy, limits, schema and forwarding, ready for requests.</summary>
public sealed record GatewayRoute(
    string Name,
    string Match,
    IReadOnlyList<string> Methods,
    Uri Upstream,
    bool Anonymous,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> RateLimits,
    long MaxBodyBytes,
    bool BodyLimited,
    IReadOnlyList<string> ContentTypes,
    JsonSchema? Schema,
    ForwardMode Forward,
    TimeSpan Timeout,
    string PolicyName,
    AuthorizationPolicy? Policy,
    IReadOnlyList<string> RemovedResponseHeaders);

/// <summary>One generation of routes: what YARP serves and what the policy provider and checks look up.</summary>
public sealed record GatewaySnapshot(long Generation, IReadOnlyDictionary<string, GatewayRoute> ByPolicy, IReadOnlyDictionary<string, GatewayRoute> ByRouteId,
    IReadOnlyList<RouteConfig> Routes, IReadOnlyList<ClusterConfig> Clusters)
{
    public static readonly GatewaySnapshot Empty = new(0, new Dictionary<string, GatewayRoute>(), new Dictionary<string, GatewayRoute>(), [], []);
}

/// <summary>
/// Validates route declarations and compiles them (schemas once, here). Every problem is collected, so one start-up
/// attempt or one reload log names all that needs fixing.
/// </summary>
public static partial class GatewayRouteCompiler
{
    public const string PolicyPrefix = "gateway:";
    public const long DefaultMaxBodyBytes = 64 * 1024;

    /// <summary>Buffered (schema) bodies are held in memory: bounded well below the streaming limit.</summary>
    public const long MaxSchemaBodyBytes = 4 * 1024 * 1024;

    public const long MaxStreamedBodyBytes = 1L << 30;

    /// <summary>Portcullis's own path roots: a gateway route may not shadow or sit beside them.</summary>
    public static readonly string[] ReservedRoots = ["api", "connect", ".well-known", "health", "metrics", "openapi", "test"];

    private static readonly string[] RefusedMethods = ["TRACE", "TRACK", "CONNECT"];

    /// <summary>
    /// Upstream response headers that tell a client which software and version answered (a map to its known
    /// vulnerabilities) and nothing it needs: removed from every proxied response unless the route keeps them. After
    /// the OWASP Secure Headers Project's list of headers to remove.
    /// </summary>
    public static readonly string[] SoftwareHeaders =
    [
        "Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-SourceFiles", "X-Runtime", "X-Generator",
        "X-Powered-CMS", "X-Server-Powered-By", "Powered-By", "X-Backend-Server", "X-Drupal-Cache", "X-Drupal-Dynamic-Cache",
    ];

    /// <summary><see cref="Hosting.SecurityHeaders"/> removes it from every response Portcullis sends, proxied or not.</summary>
    private const string AlwaysRemoved = "X-Powered-By";

    /// <summary>A declared route with where it came from (for messages) and the directory its schema path is relative to.</summary>
    public sealed record Source(string At, GatewayRouteOptions Route, string BaseDirectory);

    /// <summary>The routes declared in configuration plus those in the routes file; errors reading the file are reported.</summary>
    public static List<Source> Collect(GatewayOptions options, List<string> errors)
    {
        var sources = new List<Source>();
        for (var i = 0; i < options.Routes.Count; i++)
        {
            sources.Add(new Source($"Gateway:Routes:{i}", options.Routes[i], Directory.GetCurrentDirectory()));
        }

        if (!string.IsNullOrWhiteSpace(options.RoutesFile))
        {
            var path = Path.GetFullPath(options.RoutesFile);
            try
            {
                var file = ReadRoutesFile(path, errors);
                for (var i = 0; i < (file?.Routes.Count ?? 0); i++)
                {
                    sources.Add(new Source($"{FileLabel(path)}: {RouteLabel(file!.Routes[i].Name, i)}", file.Routes[i], Path.GetDirectoryName(path)!));
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException or System.Text.Json.JsonException)
            {
                errors.Add($"Gateway:RoutesFile '{options.RoutesFile}' cannot be read: {ex.Message}");
            }
        }

        return sources;
    }

    /// <summary>Compiles every route, or returns the full list of errors and no snapshot.</summary>
    public static (GatewaySnapshot? Snapshot, List<string> Errors) Compile(GatewayOptions options, ICollection<string> rateLimitPolicies, long generation)
    {
        var errors = new List<string>();
        var sources = Collect(options, errors);
        var compiled = new List<GatewayRoute>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var shapes = new List<(string At, string Shape, IReadOnlyList<string> Methods)>();
        foreach (var source in sources)
        {
            var route = CompileOne(source, rateLimitPolicies, generation, errors);
            if (route is null)
            {
                continue;
            }

            if (!names.Add(route.Name))
            {
                errors.Add($"{source.At}:Name '{route.Name}' is used by another route.");
            }

            var shape = Shape(route.Match);
            foreach (var other in shapes.Where(s => s.Shape == shape && s.Methods.Intersect(route.Methods).Any()))
            {
                errors.Add($"{source.At}:Match '{route.Match}' and {other.At} match the same path and method ({string.Join(", ", other.Methods.Intersect(route.Methods))}).");
            }

            shapes.Add((source.At, shape, route.Methods));
            compiled.Add(route);
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var routes = new List<RouteConfig>();
        var clusters = new List<ClusterConfig>();
        foreach (var route in compiled)
        {
            var id = $"gateway-{route.Name}";
            clusters.Add(new ClusterConfig
            {
                ClusterId = id,
                Destinations = new Dictionary<string, DestinationConfig>(StringComparer.Ordinal) { ["upstream"] = new() { Address = route.Upstream.AbsoluteUri } },
                HttpRequest = new ForwarderRequestConfig { ActivityTimeout = route.Timeout },
                HttpClient = new HttpClientConfig { DangerousAcceptAnyServerCertificate = false },
            });
            var config = new RouteConfig
            {
                RouteId = id,
                ClusterId = id,
                Match = new RouteMatch { Path = route.Match, Methods = route.Methods },
                // Anonymous routes use YARP's reserved value (AllowAnonymous); all others a per-route named policy.
                AuthorizationPolicy = route.Anonymous ? "Anonymous" : route.PolicyName,
                // YARP takes one policy name; the others are added as endpoint metadata (GatewayEndpoints).
                RateLimiterPolicy = route.RateLimits[0],
                MaxRequestBodySize = route.MaxBodyBytes,
            };
            foreach (var header in route.RemovedResponseHeaders)
            {
                // Always, not YARP's default Success: an upstream's 404 or 500 names its software just the same.
                config = config.WithTransformResponseHeaderRemove(header, ResponseCondition.Always);
            }

            routes.Add(config);
        }

        return (new GatewaySnapshot(
            generation,
            compiled.Where(r => !r.Anonymous).ToDictionary(r => r.PolicyName, StringComparer.Ordinal),
            compiled.ToDictionary(r => $"gateway-{r.Name}", StringComparer.Ordinal),
            routes,
            clusters), errors);
    }

    private static GatewayRoute? CompileOne(Source source, ICollection<string> rateLimitPolicies, long generation, List<string> errors)
    {
        var at = source.At;
        var r = source.Route;
        var before = errors.Count;
        if (string.IsNullOrWhiteSpace(r.Name) || !NamePattern().IsMatch(r.Name))
        {
            errors.Add($"{at}:Name must be 1-64 letters, digits, '-', '_' or '.'.");
        }

        RoutePattern? pattern = null;
        if (string.IsNullOrWhiteSpace(r.Match) || !r.Match.StartsWith('/'))
        {
            errors.Add($"{at}:Match must be a route pattern starting with '/', e.g. /orders/{{**rest}}.");
        }
        else
        {
            try
            {
                pattern = RoutePatternFactory.Parse(r.Match);
            }
            catch (RoutePatternException ex)
            {
                errors.Add($"{at}:Match '{r.Match}' is not a valid route pattern: {ex.Message}");
            }
        }

        if (pattern is not null)
        {
            var first = pattern.PathSegments.Count > 0 ? pattern.PathSegments[0] : null;
            if (first is null || !first.IsSimple || first.Parts[0] is not RoutePatternLiteralPart literal)
            {
                errors.Add($"{at}:Match '{r.Match}' must start with a literal segment (a root catch-all would shadow Portcullis's own paths).");
            }
            else if (ReservedRoots.Contains(literal.Content, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{at}:Match '{r.Match}' overlaps Portcullis's own /{literal.Content} paths; choose another prefix.");
            }
        }

        var methods = r.Methods.Select(m => m.Trim().ToUpperInvariant()).Distinct(StringComparer.Ordinal).ToList();
        if (methods.Count == 0)
        {
            errors.Add($"{at}:Methods must name at least one HTTP method (e.g. GET, POST).");
        }

        foreach (var method in methods.Where(m => !MethodPattern().IsMatch(m) || RefusedMethods.Contains(m)))
        {
            errors.Add($"{at}:Methods has '{method}', which is not an allowed HTTP method.");
        }

        Uri? upstream = null;
        if (!Uri.TryCreate(r.Upstream, UriKind.Absolute, out upstream)
            || (upstream.Scheme != Uri.UriSchemeHttp && upstream.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(upstream.UserInfo) || !string.IsNullOrEmpty(upstream.Query) || !string.IsNullOrEmpty(upstream.Fragment))
        {
            errors.Add($"{at}:Upstream must be an absolute http:// or https:// URL without credentials, query or fragment (is '{r.Upstream}').");
        }

        var roles = r.Require?.Roles.Select(x => x.Trim()).Where(x => x.Length > 0).Distinct(StringComparer.Ordinal).ToList() ?? [];
        var scopes = r.Require?.Scopes.Select(x => x.Trim()).Where(x => x.Length > 0).Distinct(StringComparer.Ordinal).ToList() ?? [];
        if (r.Anonymous && r.Require is not null)
        {
            errors.Add($"{at} sets both Anonymous and Require: choose one.");
        }
        else if (!r.Anonymous && r.Require is null)
        {
            errors.Add($"{at} has no Require: deny by default. State Require:Roles, Require:Scopes or Require:Authenticated, or \"Anonymous\": true.");
        }
        else if (r.Require is { } require && roles.Count == 0 && scopes.Count == 0 && !require.Authenticated)
        {
            errors.Add($"{at}:Require names no role or scope: list some, or set Require:Authenticated to true for any signed-in caller.");
        }

        var limits = r.RateLimits.Select(x => x.Trim()).Where(x => x.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        foreach (var unknown in limits.Where(l => !rateLimitPolicies.Contains(l)))
        {
            errors.Add($"{at}:RateLimits names unknown policy '{unknown}' (define it under RateLimits:Policies).");
        }

        if (limits.Count == 0)
        {
            limits.Add(r.Anonymous ? RateLimitPolicies.Anonymous : RateLimitPolicies.Authenticated);
        }

        var forward = ForwardMode.None;
        if (r.Forward is { Length: > 0 } f && (!Enum.TryParse(f, ignoreCase: true, out forward) || !Enum.IsDefined(forward) || int.TryParse(f, out _)))
        {
            errors.Add($"{at}:Forward '{f}' is unknown: use None, Token or Assertion.");
        }

        if (r.Anonymous && forward != ForwardMode.None)
        {
            errors.Add($"{at}:Forward must be None on an anonymous route (there is no verified caller to forward).");
        }

        var timeout = r.Timeout ?? TimeSpan.FromSeconds(30);
        if (timeout < TimeSpan.FromMilliseconds(100) || timeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{at}:Timeout must be between 00:00:00.1 and 00:10:00.");
        }

        var keep = r.KeepResponseHeaders.Select(h => h.Trim()).Where(h => h.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        foreach (var header in keep)
        {
            if (string.Equals(header, AlwaysRemoved, StringComparison.OrdinalIgnoreCase))
            {
                errors.Add($"{at}:KeepResponseHeaders cannot keep {AlwaysRemoved}: Portcullis removes it from every response it sends.");
            }
            else if (!SoftwareHeaders.Contains(header, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{at}:KeepResponseHeaders has '{header}', which is not removed (other upstream headers pass unchanged); it may name {string.Join(", ", SoftwareHeaders.Where(h => h != AlwaysRemoved))}.");
            }
        }

        var body = r.Body;
        var maxBytes = body?.MaxBytes ?? DefaultMaxBodyBytes;
        JsonSchema? schema = null;
        var contentTypes = body?.ContentTypes.Select(c => c.Trim().ToLowerInvariant()).Where(c => c.Length > 0).Distinct(StringComparer.Ordinal).ToList() ?? [];
        foreach (var type in contentTypes.Where(t => !System.Net.Http.Headers.MediaTypeHeaderValue.TryParse(t, out var parsed) || parsed.Parameters.Count > 0 || t.Contains('*', StringComparison.Ordinal)))
        {
            errors.Add($"{at}:Body:ContentTypes has '{type}', which is not a plain media type such as application/json.");
        }

        if (body?.Schema is { Length: > 0 } schemaPath)
        {
            if (contentTypes.Count == 0)
            {
                contentTypes.Add("application/json");
            }

            if (maxBytes is <= 0 or > MaxSchemaBodyBytes)
            {
                errors.Add($"{at}:Body:MaxBytes must be between 1 and {MaxSchemaBodyBytes.ToString(CultureInfo.InvariantCulture)} on a route with a schema (bodies are buffered to validate).");
            }

            schema = LoadSchema(at, Path.GetFullPath(schemaPath, source.BaseDirectory), errors);
        }
        else if (maxBytes is <= 0 or > MaxStreamedBodyBytes)
        {
            errors.Add($"{at}:Body:MaxBytes must be between 1 and {MaxStreamedBodyBytes.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (errors.Count > before)
        {
            return null;
        }

        var policyName = $"{PolicyPrefix}{generation.ToString(CultureInfo.InvariantCulture)}:{r.Name}";
        return new GatewayRoute(r.Name!, r.Match!, methods, upstream!, r.Anonymous, roles, scopes, limits, maxBytes, body?.MaxBytes is not null,
            contentTypes, schema, forward, timeout, policyName, r.Anonymous ? null : BuildPolicy(roles, scopes),
            [.. SoftwareHeaders.Where(h => !keep.Contains(h, StringComparer.OrdinalIgnoreCase))]);
    }

    private static AuthorizationPolicy BuildPolicy(IReadOnlyList<string> roles, IReadOnlyList<string> scopes) =>
        new AuthorizationPolicyBuilder(JwtBearerDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .AddRequirements(new GatewayAccessRequirement(roles, scopes))
            .Build();

    private static JsonSchema? LoadSchema(string at, string path, List<string> errors)
    {
        try
        {
            var text = File.ReadAllText(path);
            // A registry per schema: no two routes share $id state, and nothing is ever fetched over the network.
            return JsonSchema.FromText(text, new BuildOptions { SchemaRegistry = new SchemaRegistry() });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{at}:Body:Schema '{path}' cannot be read: {ex.Message}");
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or JsonSchemaException or RefResolutionException or ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            errors.Add($"{at}:Body:Schema '{path}' is not a valid JSON Schema: {ex.Message}");
        }

        return null;
    }

    /// <summary>Two patterns with the same shape match the same paths: literals compared case-insensitively, parameters alike.</summary>
    public static string Shape(string match)
    {
        var pattern = RoutePatternFactory.Parse(match);
        return "/" + string.Join('/', pattern.PathSegments.Select(segment => segment.IsSimple && segment.Parts[0] is RoutePatternLiteralPart literal
            ? literal.Content.ToLowerInvariant()
            : segment.Parts.OfType<RoutePatternParameterPart>().Any(p => p.IsCatchAll) ? "{**}" : "{}"));
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Z]{1,20}$")]
    private static partial Regex MethodPattern();
}
