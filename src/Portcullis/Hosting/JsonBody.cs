using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Portcullis.Hosting;

/// <summary>
/// Reads a JSON request body strictly (REQUIREMENTS NET-03/04/15, VAL-01..05): <c>application/json</c> only,
/// unknown and duplicate members refused, depth ≤ 32, no comments or trailing commas, numbers as numbers.
/// Failures become problem details naming the JSON path, never the value or parser internals.
/// </summary>
public static class JsonBody
{
    /// <summary>
    /// The deepest JSON nesting any request body may have (NET-15: at most 32), for the API's own endpoints and the
    /// gateway's schema check alike: one limit, so no route is more lenient than another.
    /// </summary>
    public const int MaxDepth = 32;

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        AllowDuplicateProperties = false,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = MaxDepth,
        AllowTrailingCommas = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
        RespectNullableAnnotations = true,
        // Missing members are found after reading (MissingMembers) so the problem can name each one; the serializer
        // would only say "$". A value-type parameter cannot show that it was missing, so those stay required here.
        RespectRequiredConstructorParameters = false,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { RequireValueTypeParameters } },
    };

    private static readonly string[] ValueRequired = ["A value is required."];

    public static async Task<(T? Value, IResult? Problem)> ReadAsync<T>(HttpContext http) where T : class
    {
        if (!IsJson(http.Request.ContentType))
        {
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "The request body must be application/json (UTF-8).",
                type: ProblemTypes.UnsupportedMediaType));
        }

        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(http.Request.Body, Options, http.RequestAborted);
            if (value is null)
            {
                return (null, Invalid("$", "A JSON object is required."));
            }

            var missing = MissingMembers(value);
            return missing.Count > 0
                ? (null, TypedResults.ValidationProblem(
                    missing.ToDictionary(name => name, _ => ValueRequired),
                    title: "The request is invalid.",
                    type: ProblemTypes.Validation))
                : (value, null);
        }
        catch (JsonException ex)
        {
            var path = string.IsNullOrEmpty(ex.Path) ? "$" : ex.Path;
            return (null, Invalid(path, "The JSON is malformed, has an unknown or duplicate member, or a value of the wrong type."));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "The request body is too large.",
                type: ProblemTypes.PayloadTooLarge));
        }
    }

    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(
            new Dictionary<string, string[]> { [field] = [message] },
            title: "The request is invalid.",
            type: ProblemTypes.Validation);

    /// <summary>
    /// Constructor parameters without a default whose value is still null: they were absent (an explicit null for a
    /// non-nullable parameter is already refused by <see cref="JsonSerializerOptions.RespectNullableAnnotations"/>).
    /// </summary>
    private static List<string> MissingMembers<T>(T value) where T : class =>
        [.. Options.GetTypeInfo(typeof(T)).Properties
            .Where(p => p.AssociatedParameter is { HasDefaultValue: false, IsNullable: false } && p.Get?.Invoke(value) is null)
            .Select(p => p.Name)];

    private static void RequireValueTypeParameters(JsonTypeInfo type)
    {
        foreach (var property in type.Properties)
        {
            if (property.AssociatedParameter is { HasDefaultValue: false } parameter
                && parameter.ParameterType.IsValueType && Nullable.GetUnderlyingType(parameter.ParameterType) is null)
            {
                property.IsRequired = true;
            }
        }
    }

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        && (media.Charset.Length == 0 || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
}
