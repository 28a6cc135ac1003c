namespace Portcullis.Gateway;

/// <summary>The gateway. Section <c>Gateway</c>; see docs/gateway.md.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>Routes declared in configuration. Empty by default: nothing is proxied.</summary>
    public List<GatewayRouteOptions> Routes { get; set; } = [];

    /// <summary>
    /// A JSON file holding <c>{"Routes": [...]}</c>, read at start and again whenever it changes (an invalid version
    /// keeps the previous routes). Relative paths are resolved from the working directory; schema paths inside it
    /// from the file's own directory.
    /// </summary>
    public string? RoutesFile { get; set; }

    /// <summary>Lifetime of the assertion forwarded by routes with <c>Forward: Assertion</c>. Default 60 s.</summary>
    public TimeSpan AssertionLifetime { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>The shape of <see cref="GatewayOptions.RoutesFile"/>.</summary>
public sealed class GatewayRoutesFile
{
    public List<GatewayRouteOptions> Routes { get; set; } = [];
}

public sealed class GatewayRouteOptions
{
    /// <summary>Unique route name (letters, digits, '-', '_', '.'); used in logs, audit and the assertion audience.</summary>
    public string? Name { get; set; }

    /// <summary>A route pattern, e.g. <c>/orders/{**rest}</c>. Its first segment is a literal outside Portcullis's own paths.</summary>
    public string? Match { get; set; }

    /// <summary>HTTP methods served; required.</summary>
    public List<string> Methods { get; set; } = [];

    /// <summary>An absolute http:// or https:// URL; the request path is appended to it.</summary>
    public string? Upstream { get; set; }

    /// <summary>Who may call. A route states this or <see cref="Anonymous"/>; one without either is refused at start.</summary>
    public GatewayRequireOptions? Require { get; set; }

    /// <summary>Anyone may call (still rate limited, validated and audited).</summary>
    public bool Anonymous { get; set; }

    /// <summary>Rate-limit policy names (RateLimits:Policies or built-in); all must admit. Default: authenticated, or anonymous.</summary>
    public List<string> RateLimits { get; set; } = [];

    public GatewayBodyOptions? Body { get; set; }

    /// <summary><c>None</c> (default), <c>Token</c> (the caller's access token) or <c>Assertion</c> (a short-lived JWT signed by Portcullis).</summary>
    public string? Forward { get; set; }

    /// <summary>How long the upstream may stay silent before the caller gets 504. Default 30 s.</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// Upstream response headers that name its software (<see cref="GatewayRouteCompiler.SoftwareHeaders"/>: <c>Server</c>,
    /// <c>X-AspNet-Version</c>, …) to pass to the client anyway. Default none: all of them are removed.
    /// </summary>
    public List<string> KeepResponseHeaders { get; set; } = [];
}

public sealed class GatewayRequireOptions
{
    /// <summary>The caller needs at least one of these roles (current roles, read on the server, not from the token).</summary>
    public List<string> Roles { get; set; } = [];

    /// <summary>The token must carry every one of these scopes.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>Any signed-in caller, when no role or scope is named.</summary>
    public bool Authenticated { get; set; }
}

public sealed class GatewayBodyOptions
{
    /// <summary>Largest body in bytes. Default 65536 (the server's limit).</summary>
    public long? MaxBytes { get; set; }

    /// <summary>Accepted media types for requests with a body; default <c>application/json</c> when a schema is set.</summary>
    public List<string> ContentTypes { get; set; } = [];

    /// <summary>A JSON Schema file (draft 2020-12 unless it says otherwise); the body is buffered and validated.</summary>
    public string? Schema { get; set; }
}

public enum ForwardMode
{
    None,
    Token,
    Assertion,
}
