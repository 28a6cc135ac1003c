using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Gateway;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Portcullis.SignIn;
using Portcullis.Storage;

namespace Portcullis.Cli;

/// <summary>
/// What <c>serve</c> tells the operator once it listens, on standard error (standard output carries the log lines):
/// where it listens, where its data and certificate are, what it loaded (gateway routes, rate-limit policies, the log
/// format) and the next step. A handful of lines; names only, never a configuration value that could be a secret.
/// </summary>
public static class StartupBanner
{
    /// <summary>Names beyond this many are counted, not listed.</summary>
    private const int MaxNames = 8;

    public sealed record Facts(
        IReadOnlyList<string> Urls,
        string DataDirectory,
        Certificates.Loaded? Certificate,
        IReadOnlyCollection<string> GatewayRoutes,
        IReadOnlyCollection<string> RateLimitPolicies,
        ConsoleLogFormat? LogFormat,
        bool LogFormatConfigured,
        bool AdministratorExists);

    public static async Task<Facts> GatherAsync(WebApplication app, Certificates.Loaded? certificate)
    {
        var services = app.Services;
        await using var scope = services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        return new Facts(
            [.. app.Urls],
            Path.GetFullPath(services.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory),
            certificate,
            [.. services.GetRequiredService<GatewayConfigProvider>().Current.ByRouteId.Values.Select(r => r.Name)],
            [.. services.GetRequiredService<RateLimitRegistry>().PolicyNames],
            services.GetServices<ILoggerProvider>().OfType<JsonConsoleLogProvider>().FirstOrDefault()?.Format,
            !string.IsNullOrEmpty(services.GetRequiredService<IConfiguration>()[ConsoleLogFormats.Setting]),
            (await users.GetUsersInRoleAsync(Roles.Admin)).Count > 0);
    }

    public static IEnumerable<string> Lines(Facts facts)
    {
        yield return $"Portcullis is listening on {string.Join(", ", facts.Urls)}";
        yield return $"Data directory: {facts.DataDirectory}";
        if (facts.Certificate is { } cert)
        {
            yield return $"TLS {(cert.SelfSigned ? "self-signed development certificate" : "certificate")}: {cert.Path}";
            yield return $"  SHA-256 fingerprint: {cert.Sha256}";
        }

        yield return facts.GatewayRoutes.Count == 0
            ? "Gateway routes: none (Gateway:Routes or Gateway:RoutesFile, see docs/gateway.md)"
            : $"Gateway routes ({facts.GatewayRoutes.Count}): {Names(facts.GatewayRoutes)}";
        yield return $"Rate-limit policies ({facts.RateLimitPolicies.Count}): {Names(facts.RateLimitPolicies)}";
        if (facts.LogFormat is { } format)
        {
            yield return format == ConsoleLogFormat.Text
                ? $"Log: text lines on stdout{(facts.LogFormatConfigured ? "" : " (a terminal)")}; {ConsoleLogFormats.Setting}=Json for JSON"
                : $"Log: JSON lines on stdout{(facts.LogFormatConfigured ? "" : " (not a terminal)")}; {ConsoleLogFormats.Setting}=Text for text";
        }

        var first = facts.Urls.Count > 0 ? facts.Urls[0] : PortcullisDefaults.Urls;
        if (!facts.AdministratorExists)
        {
            // The command as the installed `portcullis` runs it (scripts/install.sh), with this server's data directory.
            yield return "Next: no administrator exists yet. Create one with:";
            yield return $"  portcullis admin create --username root --email root@example.com --data-dir {facts.DataDirectory}";
            yield return "  (it asks for the password; or pipe it in with --password-stdin)";
        }
        else
        {
            yield return $"Next: sign in at {first.TrimEnd('/')}{SignInServices.AccountPath}; OpenID Connect discovery at {first.TrimEnd('/')}/.well-known/openid-configuration";
        }
    }

    private static string Names(IReadOnlyCollection<string> names)
    {
        var sorted = names.Order(StringComparer.Ordinal).ToList();
        return sorted.Count <= MaxNames
            ? string.Join(", ", sorted)
            : string.Join(", ", sorted.Take(MaxNames)) + $" and {sorted.Count - MaxNames} more";
    }
}
