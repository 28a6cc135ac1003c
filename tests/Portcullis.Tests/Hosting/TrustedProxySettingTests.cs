using Microsoft.Extensions.Options;

namespace Portcullis.Tests.Hosting;

/// <summary>Trusted proxies are a hosting setting (<c>Hosting:TrustedProxies</c>); the old rate-limit key still works.</summary>
public sealed class TrustedProxySettingTests
{
    [Theory]
    [InlineData("Hosting:TrustedProxies")]
    [InlineData("RateLimits:TrustedProxies")]
    public async Task An_unusable_trusted_proxy_stops_start_up_naming_the_key_it_was_given_under(string key)
    {
        var dataDirectory = HostRun.NewDataDirectory();
        try
        {
            var settings = HostRun.Settings(dataDirectory, HostRun.FreePort(), ($"{key}:0", "10.0.0.1"), ($"{key}:1", "not-an-address"));

            var failure = await HostRun.StartFailsAsync(settings);

            var validation = Assert.IsType<OptionsValidationException>(failure);
            var message = Assert.Single(validation.Failures);
            Assert.Equal($"{key}:1 ('not-an-address') is not an IP address or CIDR network.", message);
        }
        finally
        {
            await HostRun.DeleteQuietlyAsync(dataDirectory);
        }
    }
}
