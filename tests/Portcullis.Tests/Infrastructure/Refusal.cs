using System.Net;
using System.Text.Json;

namespace Portcullis.Tests.Infrastructure;

/// <summary>Assertions on what a refused request may show.</summary>
public static class Refusal
{
    /// <summary>
    /// A generic 401: <c>WWW-Authenticate: Bearer</c> without error details, and a problem+json body that says no more
    /// than "401" (no detail, no exception text).
    /// </summary>
    public static async Task AssertGeneric401Async(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.True(string.IsNullOrEmpty(challenge.Parameter), $"The challenge gives details: {challenge.Parameter}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        var body = JsonDocument.Parse(text).RootElement;
        Assert.True(body.TryGetProperty("type", out _), text);
        Assert.True(body.TryGetProperty("title", out _), text);
        Assert.Equal(401, body.GetProperty("status").GetInt32());
        Assert.True(body.TryGetProperty("traceId", out _), text);
        Assert.False(body.TryGetProperty("detail", out _), text);
        Assert.DoesNotContain("IDX", text, StringComparison.Ordinal);
        Assert.DoesNotContain("error_description", text, StringComparison.Ordinal);
    }

    /// <summary>An RFC 6749 error from the token endpoint: exactly this status and <c>error</c>, no tokens, no <c>error_uri</c>.</summary>
    public static async Task<JsonElement> AssertOAuthErrorAsync(HttpResponseMessage response, HttpStatusCode status, string error)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{(int)response.StatusCode}: {text}");
        var body = JsonDocument.Parse(text).RootElement;
        Assert.True(error == body.GetProperty("error").GetString(), text);
        Assert.False(body.TryGetProperty("error_uri", out _), text);
        Assert.False(body.TryGetProperty("access_token", out _), text);
        Assert.False(body.TryGetProperty("refresh_token", out _), text);
        return body;
    }

    /// <summary>The suite's one check of the token endpoint's generic refusal: 400 <c>invalid_grant</c>, no tokens.</summary>
    public static Task<JsonElement> AssertInvalidGrantAsync(HttpResponseMessage response) =>
        AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "invalid_grant");

    public static async Task<HttpStatusCode> MeStatusAsync(HttpClient http, string token)
    {
        using var response = await http.GetWithTokenAsync("api/me", token);
        return response.StatusCode;
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the deadline passes; returns whether it held.</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            if (await condition())
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(50);
        }
    }
}
