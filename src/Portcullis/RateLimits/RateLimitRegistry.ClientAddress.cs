using System.Net;
using System.Net.Sockets;

namespace Portcullis.RateLimits;

// The client address a per-IP limit counts.
public sealed partial class RateLimitRegistry
{
    /// <summary>The client IP; IPv6 clients are counted per /64, the block one subscriber usually holds.</summary>
    public static string ClientAddress(HttpContext context)
    {
        var address = context.Connection.RemoteIpAddress;
        if (address is null)
        {
            return "-";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = address.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }

        return address.ToString();
    }
}
