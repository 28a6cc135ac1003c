using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Yarp.ReverseProxy.Configuration;

namespace Portcullis.Gateway;

/// <summary>
/// YARP's configuration source: the compiled routes from <c>Gateway:Routes</c> and <c>Gateway:RoutesFile</c>.
/// On a change of either, the routes are compiled again; a valid result replaces the routes (the policy provider
/// sees it first, then YARP), an invalid one is logged and the previous routes stay.
/// </summary>
public sealed partial class GatewayConfigProvider : IProxyConfigProvider, IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly ILogger<GatewayConfigProvider> _logger;
    private readonly HashSet<string> _rateLimitPolicies;
    private readonly Lock _reloading = new();
    private readonly List<IDisposable> _watches = [];
    private PhysicalFileProvider? _files;
    private volatile Snapshot _snapshot;
    private string _fingerprint;
    private long _generation = 1;

    private sealed record Snapshot(GatewaySnapshot Routes, ProxyConfig Config);

    public GatewayConfigProvider(IConfiguration configuration, IOptions<RateLimitOptions> rateLimits, ILogger<GatewayConfigProvider> logger)
    {
        _configuration = configuration;
        _logger = logger;
        _rateLimitPolicies = new HashSet<string>(RateLimitRegistry.Defaults().Keys.Concat(rateLimits.Value.Policies.Keys), StringComparer.OrdinalIgnoreCase);
        var options = Read(configuration);
        var (compiled, errors) = GatewayRouteCompiler.Compile(options, _rateLimitPolicies, _generation);
        // Invalid routes at start: nothing is proxied, and the options validator stops start-up listing every error.
        StartupErrors = errors;
        _snapshot = new Snapshot(compiled ?? GatewaySnapshot.Empty, new ProxyConfig(compiled ?? GatewaySnapshot.Empty));
        _fingerprint = Fingerprint(options);
        Watch(options);
    }

    /// <summary>What was wrong with the routes at start; empty when they were valid.</summary>
    public IReadOnlyList<string> StartupErrors { get; }

    public GatewaySnapshot Current => _snapshot.Routes;

    public IProxyConfig GetConfig() => _snapshot.Config;

    /// <summary>Raised after a reload was applied (tests and logs).</summary>
    public long Generation => Current.Generation;

    private static GatewayOptions Read(IConfiguration configuration) =>
        configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();

    private void Watch(GatewayOptions options)
    {
        // The configuration's own reload token covers Gateway:Routes in appsettings (reloadOnChange).
        _watches.Add(ChangeToken.OnChange(_configuration.GetReloadToken, Reload));
        if (string.IsNullOrWhiteSpace(options.RoutesFile))
        {
            return;
        }

        var path = Path.GetFullPath(options.RoutesFile);
        var directory = Path.GetDirectoryName(path);
        if (directory is null || !Directory.Exists(directory))
        {
            return; // reported by the compiler as unreadable
        }

        _files = new PhysicalFileProvider(directory);
        var name = Path.GetFileName(path);
        _watches.Add(ChangeToken.OnChange(() => _files.Watch(name), () =>
        {
            // Editors write in steps: let the write settle, then read the whole file.
            _ = Task.Delay(TimeSpan.FromMilliseconds(150)).ContinueWith(_ => Reload(), TaskScheduler.Default);
        }));
    }

    /// <summary>Reads and compiles the routes again; public so an operator command or a test can force it.</summary>
    public void Reload()
    {
        lock (_reloading)
        {
            GatewayOptions options;
            try
            {
                options = Read(_configuration);
            }
            catch (InvalidOperationException ex)
            {
                LogReloadRejected(_logger, ex.Message);
                return;
            }

            var fingerprint = Fingerprint(options);
            if (fingerprint == _fingerprint)
            {
                return;
            }

            var generation = _generation + 1;
            var (compiled, errors) = GatewayRouteCompiler.Compile(options, _rateLimitPolicies, generation);
            if (compiled is null)
            {
                foreach (var error in errors)
                {
                    LogReloadRejected(_logger, error);
                }

                return;
            }

            _generation = generation;
            _fingerprint = fingerprint;
            var previous = _snapshot;
            _snapshot = new Snapshot(compiled, new ProxyConfig(compiled));
            LogReloaded(_logger, compiled.ByRouteId.Count, generation);
            previous.Config.Expire();
        }
    }

    /// <summary>The settings and the routes file's bytes: an unrelated configuration change does not rebuild the routes.</summary>
    private static string Fingerprint(GatewayOptions options)
    {
        var text = new StringBuilder(JsonSerializer.Serialize(options));
        if (!string.IsNullOrWhiteSpace(options.RoutesFile))
        {
            try
            {
                text.Append(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.GetFullPath(options.RoutesFile)))));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                text.Append("(unreadable)");
            }
        }

        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public void Dispose()
    {
        foreach (var watch in _watches)
        {
            watch.Dispose();
        }

        _files?.Dispose();
        _snapshot.Config.Dispose();
    }

    private sealed class ProxyConfig(GatewaySnapshot routes) : IProxyConfig, IDisposable
    {
        private readonly CancellationTokenSource _expired = new();

        public string RevisionId { get; } = routes.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public IReadOnlyList<RouteConfig> Routes => routes.Routes;

        public IReadOnlyList<ClusterConfig> Clusters => routes.Clusters;

        public IChangeToken ChangeToken => new CancellationChangeToken(_expired.Token);

        public void Expire() => _expired.Cancel();

        public void Dispose() => _expired.Dispose();
    }

    [LoggerMessage(EventId = EventIds.Gateway.RoutesReloaded, EventName = "gateway_routes_reloaded", Level = LogLevel.Information,
        Message = "gateway_routes_reloaded: {Count} routes, generation {Generation}.")]
    private static partial void LogReloaded(ILogger logger, int count, long generation);

    [LoggerMessage(EventId = EventIds.Gateway.ReloadRejected, EventName = "gateway_reload_rejected", Level = LogLevel.Error,
        Message = "gateway_reload_rejected: the previous routes stay; {Error}")]
    private static partial void LogReloadRejected(ILogger logger, string error);
}

/// <summary>Start-up refuses invalid routes, listing every error (the provider compiled them once already).</summary>
public sealed class GatewayOptionsValidator(GatewayConfigProvider routes) : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options) =>
        routes.StartupErrors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(routes.StartupErrors);
}
