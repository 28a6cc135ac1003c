using System.Net;
using System.Text.Json;

namespace Portcullis.Tests.Hosting;

/// <summary>Checks an RFC 9457 answer: media type, the members clients rely on, and that nothing internal leaked.</summary>
internal static class ProblemAssert
{
    private static readonly string[] Leaks =
    [
        "Microsoft.", "System.", " at ", ".cs:line", "Exception", "SQLite", "Sqlite", "Kestrel", "OpenIddict", "10.0.", "net10",
    ];

    public static async Task<JsonElement> IsProblemAsync(HttpResponseMessage response, HttpStatusCode status, string? typeEndsWith = null)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal((int)status, body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("traceId").GetString()));
        var type = body.GetProperty("type").GetString();
        Assert.StartsWith("https://portcullis.dev/problems/", type, StringComparison.Ordinal);
        if (typeEndsWith is not null)
        {
            Assert.EndsWith(typeEndsWith, type, StringComparison.Ordinal);
        }

        HasNoInternals(text);
        return body;
    }

    /// <summary>No framework names, stack frames, exception types or version strings (DATA-02, DATA-03).</summary>
    public static void HasNoInternals(string text)
    {
        foreach (var leak in Leaks)
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }
    }
}
