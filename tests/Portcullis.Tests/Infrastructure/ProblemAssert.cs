using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// The suite's one check of an RFC 9457 answer: media type, the members clients rely on, nothing internal leaked,
/// and no secret echoed.
/// </summary>
public static partial class ProblemAssert
{
    /// <summary>
    /// What would show .NET, the JSON parser, the web server, the token library or the database leaking into an
    /// answer (DATA-02, DATA-03, V07). Compared ignoring case. Stack frames are matched by <see cref="StackFrame"/>:
    /// a bare " at " would also match the product's own "at least 15 characters".
    /// </summary>
    private static readonly string[] Leaks =
    [
        "Microsoft.", "System.", "System.Text.Json", ".cs:line", "Exception", "BytePositionInLine", "LineNumber", "Path:",
        "SQLite", "Npgsql", "Kestrel", "OpenIddict", "10.0.", "net10",
    ];

    [GeneratedRegex(@"(^|\s|\\n)at [A-Za-z_][\w.`<>+]*\.[\w`<>|]+\(")]
    private static partial Regex StackFrame();

    /// <summary>
    /// Asserts a problem with exactly <paramref name="status"/>: <c>application/problem+json</c>, a Portcullis
    /// <c>type</c> (ending in <paramref name="typeEndsWith"/> when given), <c>title</c>, <c>status</c> and
    /// <c>traceId</c>, no internals, and none of <paramref name="secrets"/> (raw or JSON-escaped, ignoring case).
    /// </summary>
    public static async Task<JsonElement> IsProblemAsync(
        HttpResponseMessage response, HttpStatusCode status, string? typeEndsWith = null, IEnumerable<string>? secrets = null)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal((int)status, body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("title").GetString()));
        var traceId = body.GetProperty("traceId").GetString();
        Assert.False(string.IsNullOrWhiteSpace(traceId));
        var type = body.GetProperty("type").GetString();
        Assert.StartsWith("https://portcullis.dev/problems/", type, StringComparison.Ordinal);
        if (typeEndsWith is not null)
        {
            Assert.EndsWith(typeEndsWith, type, StringComparison.Ordinal);
        }

        HasNoInternals(text);
        // The trace id is random hex: a short secret could match it by chance.
        AssertNotEchoed(text.Replace(traceId!, "", StringComparison.Ordinal), secrets ?? []);
        return body;
    }

    /// <summary>No framework names, stack frames, parser positions, exception types or version strings.</summary>
    public static void HasNoInternals(string text)
    {
        foreach (var leak in Leaks)
        {
            Assert.DoesNotContain(leak, text, StringComparison.OrdinalIgnoreCase);
        }

        Assert.DoesNotMatch(StackFrame(), text);
    }

    /// <summary>None of <paramref name="secrets"/> appears in <paramref name="text"/>, raw or JSON-escaped, in any case.</summary>
    public static void AssertNotEchoed(string text, IEnumerable<string> secrets)
    {
        foreach (var secret in secrets.Where(s => s.Length > 0))
        {
            Assert.DoesNotContain(secret, text, StringComparison.OrdinalIgnoreCase);
            var escaped = JsonSerializer.Serialize(secret)[1..^1];
            Assert.DoesNotContain(escaped, text, StringComparison.OrdinalIgnoreCase);
        }
    }
}
