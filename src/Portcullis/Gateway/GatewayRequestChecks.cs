using System.Buffers;
using System.Text.Json;
using Json.Schema;
using Microsoft.AspNetCore.Http.Features;
using Portcullis.Hosting;
using Yarp.ReverseProxy.Forwarder;

namespace Portcullis.Gateway;

/// <summary>Problem types the gateway adds; listed in docs/problems.md.</summary>
public static class GatewayProblems
{
    private const string Base = "https://portcullis.dev/problems/";
    public const string InvalidPath = Base + "invalid-path";
    public const string UpstreamUnavailable = Base + "upstream-unavailable";
    public const string UpstreamTimeout = Base + "upstream-timeout";

    public static Task WriteAsync(HttpContext context, int status, string type, string title, IDictionary<string, object?>? extensions = null)
    {
        context.Response.StatusCode = status;
        return context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Type = type, Title = title, Extensions = extensions ?? new Dictionary<string, object?>() },
        }).AsTask();
    }
}

internal static class GatewayAudit
{
    /// <summary>Writes one event; a failing audit store never changes the answer (it is counted instead).</summary>
    public static async Task WriteAsync(HttpContext context, Audit.AuditEvents.Definition definition, string? route, object details)
    {
        try
        {
            await context.RequestServices.GetRequiredService<Audit.AuditLog>().WriteAsync(
                definition, Audit.AuditOutcomes.Denied, route is null ? null : $"route:{route}", details, context.RequestAborted);
        }
#pragma warning disable CA1031 // The audit store failing must not turn a 4xx/5xx decision into something else.
        catch (Exception)
#pragma warning restore CA1031
        {
            context.RequestServices.GetRequiredService<PortcullisMetrics>().AuditWriteFailures.Add(1);
        }
    }
}

/// <summary>
/// The gateway's own step in YARP's proxy pipeline, after authentication, authorization and rate limiting: refuse
/// paths that could mean something else upstream, enforce media type and size, validate the body against the
/// route's schema (buffering only then, and only up to the limit), and turn upstream faults into problem answers.
/// </summary>
public sealed partial class GatewayRequestChecks(RequestDelegate next, ILogger<GatewayRequestChecks> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<GatewayRoute>();
        if (route is null)
        {
            // Not one of ours (cannot happen: every gateway endpoint carries its route); refuse rather than forward.
            await GatewayProblems.WriteAsync(context, StatusCodes.Status404NotFound, ProblemTypes.NotFound, "Not found.");
            return;
        }

        if (PathProblem(context) is { } pathProblem)
        {
            await RefuseAsync(context, route, StatusCodes.Status400BadRequest, GatewayProblems.InvalidPath,
                "The path contains an encoded slash, a dot segment or an empty segment.", pathProblem);
            return;
        }

        if (!await CheckBodyAsync(context, route))
        {
            return;
        }

        await next(context);

        if (context.Features.Get<IForwarderErrorFeature>() is { } error && !context.Response.HasStarted)
        {
            await UpstreamFaultAsync(context, route, error);
        }
    }

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

    /// <summary>
    /// Field-by-field errors keyed by JSON pointer. Messages are Portcullis's own per keyword: the library's text for
    /// some keywords quotes the submitted value, and values are never echoed.
    /// </summary>
    private static readonly EvaluationOptions FlagOnly = new() { OutputFormat = OutputFormat.Flag };

    internal static Dictionary<string, string[]>? Validate(JsonSchema schema, JsonElement instance)
    {
        // The flag format is the cheap pass every valid request takes; the detailed list only for a failure.
        if (schema.Evaluate(instance, FlagOnly).IsValid)
        {
            return null;
        }

        var results = schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });

        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var detail in (results.Details ?? []).Prepend(results))
        {
            if (detail.IsValid || detail.Errors is not { Count: > 0 } found)
            {
                continue;
            }

            var pointer = detail.InstanceLocation.ToString();
            if (pointer.Length > 200)
            {
                pointer = pointer[..200];
            }

            // A false subschema (additionalProperties: false) reports no keyword of its own: name the one above it.
            var parentKeyword = detail.EvaluationPath.ToString().Split('/').LastOrDefault() ?? "";
            foreach (var (keyword, message) in found)
            {
                var text = Message(KnownKeywords.Contains(keyword) ? keyword : parentKeyword, message);
                if (!errors.TryGetValue(pointer, out var list))
                {
                    errors[pointer] = list = [];
                }

                if (!list.Contains(text))
                {
                    list.Add(text);
                }
            }

            if (errors.Count >= 50)
            {
                break;
            }
        }

        if (errors.Count == 0)
        {
            errors[""] = ["Does not match the schema."];
        }

        return errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }

    private static readonly HashSet<string> KnownKeywords = new(StringComparer.Ordinal)
    {
        "required", "type", "enum", "const", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf", "minLength",
        "maxLength", "pattern", "format", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "additionalProperties",
        "unevaluatedProperties", "propertyNames", "additionalItems", "unevaluatedItems", "items", "prefixItems", "dependentRequired",
        "dependencies", "oneOf", "anyOf", "allOf", "not",
    };

    private static string Message(string keyword, string libraryMessage) => keyword switch
    {
        // Names only the schema's property names, never the instance's values.
        "required" => libraryMessage,
        "type" => "Has the wrong type.",
        "enum" or "const" => "Is not one of the allowed values.",
        "minimum" or "exclusiveMinimum" => "Is below the minimum.",
        "maximum" or "exclusiveMaximum" => "Is above the maximum.",
        "multipleOf" => "Is not an allowed multiple.",
        "minLength" => "Is too short.",
        "maxLength" => "Is too long.",
        "pattern" => "Does not have the required format.",
        "format" => "Does not have the required format.",
        "minItems" => "Has too few items.",
        "maxItems" => "Has too many items.",
        "uniqueItems" => "Has duplicate items.",
        "minProperties" => "Has too few members.",
        "maxProperties" => "Has too many members.",
        "additionalProperties" or "unevaluatedProperties" or "propertyNames" => "Is not an allowed member.",
        "additionalItems" or "unevaluatedItems" or "items" or "prefixItems" => "Has an item that is not allowed.",
        "dependentRequired" or "dependencies" => "A member it depends on is missing.",
        "oneOf" or "anyOf" or "allOf" or "not" => "Does not match the allowed shapes.",
        "$ref" => "Does not match the schema.",
        _ => "Does not match the schema.",
    };

    private async Task RefuseAsync(HttpContext context, GatewayRoute route, int status, string type, string title, string reason,
        Dictionary<string, object?>? extensions = null, IEnumerable<string>? fields = null)
    {
        LogRefused(logger, route.Name, reason, status);
        await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayInvalidRequest, route.Name,
            new { method = context.Request.Method, reason, status, fields = fields?.Take(20).ToArray() });
        await GatewayProblems.WriteAsync(context, status, type, title, extensions);
    }

    private async Task UpstreamFaultAsync(HttpContext context, GatewayRoute route, IForwarderErrorFeature error)
    {
        var (status, type, title) = error.Error switch
        {
            ForwarderError.RequestTimedOut => (StatusCodes.Status504GatewayTimeout, GatewayProblems.UpstreamTimeout, "The upstream service did not answer in time."),
            ForwarderError.RequestBodyClient when error.Exception is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }
                => (StatusCodes.Status413PayloadTooLarge, ProblemTypes.PayloadTooLarge, "The request body is too large."),
            ForwarderError.RequestBodyClient or ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled
                => (context.Response.StatusCode is >= 400 and < 500 ? context.Response.StatusCode : StatusCodes.Status400BadRequest, ProblemTypes.MalformedJson, "The request could not be read."),
            _ => (StatusCodes.Status502BadGateway, GatewayProblems.UpstreamUnavailable, "The upstream service is unavailable."),
        };
        if (context.RequestAborted.IsCancellationRequested)
        {
            return; // the caller left; nobody to answer
        }

        context.Response.Clear();
        if (status >= 500)
        {
            // The exception stays in the log (by type and YARP's own log); the caller learns nothing about the upstream.
            LogUpstreamFault(logger, route.Name, error.Error.ToString(), status);
            await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayUpstreamFault, route.Name,
                new { method = context.Request.Method, status, error = error.Error.ToString() });
            await GatewayProblems.WriteAsync(context, status, type, title);
        }
        else
        {
            await RefuseAsync(context, route, status, type, title, "body");
        }
    }

    [LoggerMessage(EventId = EventIds.Gateway.RequestRefused, EventName = "gateway_request_refused", Level = LogLevel.Information,
        Message = "gateway_request_refused: route {Route}, reason {Reason}, status {Status}.")]
    private static partial void LogRefused(ILogger logger, string route, string reason, int status);

    [LoggerMessage(EventId = EventIds.Gateway.UpstreamFault, EventName = "gateway_upstream_fault", Level = LogLevel.Warning,
        Message = "gateway_upstream_fault: route {Route}, error {Error}, status {Status}.")]
    private static partial void LogUpstreamFault(ILogger logger, string route, string error, int status);
}
