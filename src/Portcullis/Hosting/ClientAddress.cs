using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Portcullis.Hosting;

/// <summary>Where requests come from. Section <c>Hosting</c>.</summary>
public sealed class HostingOptions
{
    public const string Section = "Hosting";

    /// <summary>The key this setting had before it moved here; still read, with a warning (doctor's deprecated-setting).</summary>
    public const string DeprecatedTrustedProxiesKey = "RateLimits:TrustedProxies";

    /// <summary>
    /// Proxy addresses or CIDR networks whose <c>X-Forwarded-For</c> is believed. Empty (the default): the client IP
    /// is always the connection's remote address and no forwarding header is read.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>The key <see cref="TrustedProxies"/> was read from, for messages.</summary>
    internal string TrustedProxiesKey { get; set; } = $"{Section}:{nameof(TrustedProxies)}";
}

/// <summary>Every unusable proxy entry, by its key.</summary>
public sealed class HostingOptionsValidator : IValidateOptions<HostingOptions>
{
    public ValidateOptionsResult Validate(string? name, HostingOptions options)
    {
        var failures = new List<string>();
        for (var i = 0; i < options.TrustedProxies.Count; i++)
        {
            if (!ClientAddress.TryParseProxy(options.TrustedProxies[i], out _, out _))
            {
                failures.Add($"{options.TrustedProxiesKey}:{i} ('{options.TrustedProxies[i]}') is not an IP address or CIDR network.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// The client address every later step sees (logs, the login throttle, rate limits, the audit trail): the connection's,
/// or behind configured proxies the rightmost <c>X-Forwarded-For</c> hop that is not one of them.
/// </summary>
public static class ClientAddress
{
    public static IServiceCollection AddPortcullisClientAddress(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<HostingOptions>().BindConfiguration(HostingOptions.Section)
            .PostConfigure<IConfiguration>((options, configuration) =>
            {
                // The old key keeps working until it is renamed; the new one wins when both are set.
                if (options.TrustedProxies.Count == 0
                    && configuration.GetSection(HostingOptions.DeprecatedTrustedProxiesKey).Get<List<string>>() is { Count: > 0 } old)
                {
                    options.TrustedProxies = old;
                    options.TrustedProxiesKey = HostingOptions.DeprecatedTrustedProxiesKey;
                }
            });
        services.AddSingleton<IValidateOptions<HostingOptions>, HostingOptionsValidator>();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<HostingOptions>>((forwarded, hosting) =>
        {
            // Only X-Forwarded-For, only from the configured proxies (the defaults trust loopback: cleared), walking
            // from the right until the first address that is not a trusted proxy.
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            forwarded.ForwardLimit = null;
            forwarded.RequireHeaderSymmetry = false;
            foreach (var proxy in hosting.Value.TrustedProxies)
            {
                if (TryParseProxy(proxy, out var address, out var network))
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
    /// X-Forwarded-For hop. Without, nothing is read.
    /// </summary>
    public static WebApplication UsePortcullisClientAddress(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<HostingOptions>>().Value.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }

        return app;
    }

    internal static bool TryParseProxy(string? value, out IPAddress? address, out System.Net.IPNetwork? network)
    {
        address = null;
        network = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        if (value.Contains('/', StringComparison.Ordinal))
        {
            if (System.Net.IPNetwork.TryParse(value.Trim(), out var parsed))
            {
                network = parsed;
                return true;
            }

            return false;
        }

        return IPAddress.TryParse(value.Trim(), out address);
    }
}
