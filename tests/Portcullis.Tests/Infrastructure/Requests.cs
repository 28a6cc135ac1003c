using System.Net.Http.Json;
using System.Text.Json;

namespace Portcullis.Tests.Infrastructure;

/// <summary>The suite's one way to send a request with a bearer token, and to read a JSON answer.</summary>
public static class Requests
{
    /// <summary>Sends <paramref name="request"/> with <c>Authorization: Bearer <paramref name="token"/></c> (none when null).</summary>
    public static Task<HttpResponseMessage> SendWithTokenAsync(this HttpClient http, HttpRequestMessage request, string? token)
    {
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        return http.SendAsync(request);
    }

    /// <summary>
    /// <paramref name="method"/> <paramref name="path"/> with the token (none when null), a body (an
    /// <see cref="HttpContent"/> as it is, anything else as JSON) and extra request headers, sent without validation.
    /// </summary>
    public static async Task<HttpResponseMessage> SendAsync(
        this HttpClient http, HttpMethod method, string path, string? token, object? body = null, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, path)
        {
            Content = body as HttpContent ?? (body is null ? null : JsonContent.Create(body)),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await http.SendWithTokenAsync(request, token);
    }

    public static Task<HttpResponseMessage> GetWithTokenAsync(this HttpClient http, string path, string token) =>
        http.SendAsync(HttpMethod.Get, path, token);

    public static Task<HttpResponseMessage> PostWithTokenAsync(this HttpClient http, string path, string token, object? body = null) =>
        http.SendAsync(HttpMethod.Post, path, token, body);

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response) =>
        await response.Content.ReadFromJsonAsync<JsonElement>();
}
