using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Portcullis.Hosting;

namespace Portcullis.Gateway;

// The body: size, media type, and reading it bounded when the route has a schema.
public sealed partial class GatewayRequestChecks
{
    private async Task<bool> CheckBodyAsync(HttpContext context, GatewayRoute route)
    {
        var request = context.Request;
        var hasBody = request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        if (request.ContentLength > route.MaxBodyBytes)
        {
            await RefuseAsync(context, route, StatusCodes.Status413PayloadTooLarge, ProblemTypes.PayloadTooLarge, "The request body is too large.", "size");
            return false;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = route.MaxBodyBytes; // also bounds chunked bodies while they stream
        }

        if (!hasBody)
        {
            if (route.Schema is not null && (HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method)))
            {
                await RefuseAsync(context, route, StatusCodes.Status400BadRequest, ProblemTypes.Validation, "A JSON body is required.", "schema",
                    new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [""] = ["A JSON body is required."] } });
                return false;
            }

            return true;
        }

        if (route.ContentTypes.Count > 0 && !IsAccepted(request.ContentType, route))
        {
            await RefuseAsync(context, route, StatusCodes.Status415UnsupportedMediaType, ProblemTypes.UnsupportedMediaType,
                "The request body's media type is not accepted here.", "media-type");
            return false;
        }

        if (route.Schema is null)
        {
            return true; // streamed to the upstream, bounded by the size limit
        }

        var (buffer, length, tooLarge) = await ReadBoundedAsync(request.Body, route.MaxBodyBytes, context.RequestAborted);
        if (tooLarge)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            await RefuseAsync(context, route, StatusCodes.Status413PayloadTooLarge, ProblemTypes.PayloadTooLarge, "The request body is too large.", "size");
            return false;
        }

        Dictionary<string, string[]>? errors;
        try
        {
            using var document = JsonDocument.Parse(buffer.AsMemory(0, length), new JsonDocumentOptions { MaxDepth = JsonBody.MaxDepth, AllowDuplicateProperties = false });
            errors = Validate(route.Schema, document.RootElement);
        }
        catch (JsonException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            // No parser position or message: they describe the attacker's bytes (V07).
            await RefuseAsync(context, route, StatusCodes.Status400BadRequest, ProblemTypes.MalformedJson, "The request body is not valid JSON.", "malformed-json");
            return false;
        }

        if (errors is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            await RefuseAsync(context, route, StatusCodes.Status400BadRequest, ProblemTypes.Validation, "The request body does not match the schema.", "schema",
                new Dictionary<string, object?> { ["errors"] = errors }, fields: errors.Keys);
            return false;
        }

        // The validated bytes are exactly what the upstream gets.
        var body = new MemoryStream(buffer.AsSpan(0, length).ToArray(), writable: false);
        ArrayPool<byte>.Shared.Return(buffer);
        request.Body = body;
        request.ContentLength = length;
        request.Headers.TransferEncoding = default;
        return true;
    }

    private static bool IsAccepted(string? contentType, GatewayRoute route)
    {
        // The usual case, a bare listed media type ("application/json"), without parsing: the route's list holds only
        // plain lower-case media types, so an exact case-insensitive match is an accepted type with no charset.
        if (contentType is not null)
        {
            foreach (var accepted in route.ContentTypes)
            {
                if (string.Equals(contentType, accepted, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        if (!System.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var parsed) || parsed.MediaType is null)
        {
            return false;
        }

        // JSON is UTF-8 (RFC 8259 §8.1): any other declared charset is refused rather than misread.
        if (parsed.CharSet is { } charset && !string.Equals(charset.Trim('"'), "utf-8", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return route.ContentTypes.Contains(parsed.MediaType.ToLowerInvariant(), StringComparer.Ordinal);
    }

    private static async Task<(byte[] Buffer, int Length, bool TooLarge)> ReadBoundedAsync(Stream body, long max, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(max + 1, 16 * 1024));
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > max)
                {
                    return (buffer, length, true);
                }

                var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, max + 1));
                buffer.AsSpan(0, length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }

            int read;
            try
            {
                read = await body.ReadAsync(buffer.AsMemory(length, buffer.Length - length), ct);
            }
            catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return (buffer, length, true);
            }

            if (read == 0)
            {
                return (buffer, length, length > max);
            }

            length += read;
            if (length > max)
            {
                return (buffer, length, true);
            }
        }
    }
}
