using Microsoft.AspNetCore.Http.Features;

namespace Portcullis.Gateway;

// Path rules: what the raw request target may not contain.
public sealed partial class GatewayRequestChecks
{
    /// <summary>
    /// Checked on the raw request target, before any decoding: anything an upstream might decode or resolve into a
    /// different path than the one matched here (%2F, %5C, %25, %00, backslash, dot segments, '//', ';' parameters on
    /// dot segments) is refused, so the policy enforced is always the one for the path the upstream sees.
    /// </summary>
    internal static string? PathProblem(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        var path = query >= 0 ? raw[..query] : raw;
        if (!path.StartsWith('/'))
        {
            return "not-origin-form";
        }

        if (path.Contains('\\', StringComparison.Ordinal) || path.Contains("//", StringComparison.Ordinal))
        {
            return "separator";
        }

        foreach (var encoded in (ReadOnlySpan<string>)["%2f", "%5c", "%25", "%00"])
        {
            if (path.Contains(encoded, StringComparison.OrdinalIgnoreCase))
            {
                return "encoded-separator";
            }
        }

        foreach (var segment in path.Split('/'))
        {
            var decoded = segment.Replace("%2e", ".", StringComparison.OrdinalIgnoreCase);
            var semicolon = decoded.IndexOf(';', StringComparison.Ordinal);
            var name = semicolon >= 0 ? decoded[..semicolon] : decoded;
            if (name is "." or "..")
            {
                return "dot-segment";
            }
        }

        return null;
    }
}
