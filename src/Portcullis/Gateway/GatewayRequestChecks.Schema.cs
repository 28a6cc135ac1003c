using System.Text.Json;
using Json.Schema;

namespace Portcullis.Gateway;

// Schema validation, with messages that never echo the submitted values.
public sealed partial class GatewayRequestChecks
{
    private static readonly EvaluationOptions FlagOnly = new() { OutputFormat = OutputFormat.Flag };

    /// <summary>
    /// Field-by-field errors keyed by JSON pointer. Messages are Portcullis's own per keyword: the library's text for
    /// some keywords quotes the submitted value, and values are never echoed.
    /// </summary>
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
}
