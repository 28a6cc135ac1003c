using System.Text;

namespace Portcullis.RateLimits;

// Partition keys: which bucket a request is counted in.
public sealed partial class RateLimitRegistry
{
    /// <summary>
    /// The partition key from the request as resolved by the server: the connection's address (after trusted-proxy
    /// processing only), the authenticated subject, the token's client, the matched route pattern — never the raw
    /// path, so case, slashes, encoding and query strings cannot open a fresh bucket.
    /// </summary>
    public static string PartitionKey(HttpContext context, PartitionParts parts)
    {
        if (parts == PartitionParts.None)
        {
            return "*";
        }

        var key = new StringBuilder();
        if (parts.HasFlag(PartitionParts.ClientIp))
        {
            key.Append("ip:").Append(ClientAddress(context)).Append('|');
        }

        if (parts.HasFlag(PartitionParts.User))
        {
            var subject = context.User.FindFirst("sub")?.Value;
            // Unauthenticated callers of a per-user policy are counted per IP, never in one shared bucket.
            key.Append(subject is null ? "anon-ip:" + ClientAddress(context) : "user:" + subject).Append('|');
        }

        if (parts.HasFlag(PartitionParts.ClientId))
        {
            key.Append("client:").Append(context.User.FindFirst("client_id")?.Value ?? context.User.FindFirst("azp")?.Value ?? "-").Append('|');
        }

        if (parts.HasFlag(PartitionParts.Route))
        {
            key.Append("route:").Append(context.GetEndpoint() is RouteEndpoint route ? route.RoutePattern.RawText : "(unmatched)").Append('|');
        }

        return key.ToString();
    }
}
