using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Accounts;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Accounts;

/// <summary>Assertions and raw-request helpers shared by the account tests.</summary>
internal static class AccountsTestKit
{
    /// <summary>Asserts a 400 validation problem whose <c>errors</c> name <paramref name="field"/> (or <c>$.field</c>).</summary>
    public static async Task<JsonElement> AssertInvalidFieldAsync(HttpResponseMessage response, string field, params string[] secrets)
    {
        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: secrets);
        AssertNamesField(problem, field);
        return problem;
    }

    public static void AssertNamesField(JsonElement problem, string field)
    {
        Assert.True(problem.TryGetProperty("errors", out var errors), "The problem has no 'errors' member: " + problem);
        var names = errors.EnumerateObject().Select(e => e.Name).ToList();
        Assert.True(
            names.Any(n => n.Equals(field, StringComparison.OrdinalIgnoreCase) || n.Equals("$." + field, StringComparison.OrdinalIgnoreCase)),
            $"Expected the field '{field}' among [{string.Join(", ", names)}].");
    }

    /// <summary>The messages given for one field (keyed as <c>field</c> or <c>$.field</c>).</summary>
    public static string MessagesFor(JsonElement problem, string field) =>
        string.Join(" ", problem.GetProperty("errors").EnumerateObject()
            .Where(e => e.Name.Equals(field, StringComparison.OrdinalIgnoreCase) || e.Name.Equals("$." + field, StringComparison.OrdinalIgnoreCase))
            .SelectMany(e => e.Value.EnumerateArray().Select(m => m.GetString())));

    /// <summary>POSTs exactly these bytes with exactly this Content-Type (none when null).</summary>
    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient http, string path, byte[] body, string? contentType = "application/json", string? bearer = null)
    {
        var content = new ByteArrayContent(body);
        if (contentType is not null)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }

        return http.SendAsync(HttpMethod.Post, path, bearer, content);
    }

    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient http, string path, string body, string? contentType = "application/json", string? bearer = null) =>
        http.PostRawAsync(path, Encoding.UTF8.GetBytes(body), contentType, bearer);

    /// <summary>
    /// POSTs a body over the server's limit with <c>Expect: 100-continue</c>, as a well-behaved client would: the server
    /// answers 413 before the body is sent. Without it the server's early answer races the upload, and the client
    /// often sees only the broken pipe of the closed connection.
    /// </summary>
    public static Task<HttpResponseMessage> PostOversizedAsync(this HttpClient http, string path, string body)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.ExpectContinue = true;
        return http.SendAsync(request);
    }

    /// <summary>A registration body from a template: <c>USERNAME</c> and <c>PASSWORD</c> are replaced.</summary>
    public static string Fill(string template, string username) =>
        template.Replace("USERNAME", username, StringComparison.Ordinal).Replace("PASSWORD", ClientFlows.Password, StringComparison.Ordinal);

    public static async Task<int> CountUsersAsync(this PortcullisServer server)
    {
        await using var scope = server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PortcullisDb>().Users.CountAsync();
    }

    /// <summary>The stored row, read fresh from the database.</summary>
    public static async Task<User?> FindUserAsync(this PortcullisServer server, string username)
    {
        var key = UsernameRules.Key(username);
        await using var scope = server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PortcullisDb>().Users.AsNoTracking()
            .SingleOrDefaultAsync(u => u.NormalizedUserName == key);
    }

    /// <summary>
    /// Asserts that <paramref name="send"/> is answered (body included) within <paramref name="bound"/> in at least one
    /// of three tries. A delay the request itself causes (hashing a huge input, an injected sleep) shows in every
    /// try; a busy 2-core machine running other tests in parallel rarely slows three in a row.
    /// </summary>
    public static async Task AssertAnsweredWithinAsync(TimeSpan bound, Func<Task<HttpResponseMessage>> send)
    {
        var times = new List<double>();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var watch = Stopwatch.StartNew();
            using var response = await send();
            await response.Content.ReadAsByteArrayAsync();
            watch.Stop();
            Assert.True((int)response.StatusCode < 500, $"Got {(int)response.StatusCode}.");
            if (watch.Elapsed < bound)
            {
                return;
            }

            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        Assert.Fail($"Never answered within {bound.TotalMilliseconds} ms: {string.Join(", ", times.Select(t => t.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))} ms.");
    }

    /// <summary>
    /// Asserts that <paramref name="probe"/> takes less than <paramref name="delay"/> longer than a comparable
    /// <paramref name="baseline"/> request measured right before it, in one of three tries. For requests that
    /// hash a password, whose own cost on a loaded machine can pass a second: an injected delay adds to it every time.
    /// </summary>
    public static async Task AssertNoDelayAsync(TimeSpan delay, Func<Task<HttpResponseMessage>> baseline, Func<Task<HttpResponseMessage>> probe)
    {
        var seen = new List<string>();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var baseTime = await MeasureAsync(baseline);
            var probeTime = await MeasureAsync(probe);
            if (probeTime - baseTime < delay)
            {
                return;
            }

            seen.Add($"{probeTime.TotalMilliseconds:F0} vs {baseTime.TotalMilliseconds:F0}");
        }

        Assert.Fail($"The request was always at least {delay.TotalMilliseconds} ms slower than its baseline (ms): {string.Join("; ", seen)}.");

        static async Task<TimeSpan> MeasureAsync(Func<Task<HttpResponseMessage>> send)
        {
            var watch = Stopwatch.StartNew();
            using var response = await send();
            await response.Content.ReadAsByteArrayAsync();
            Assert.True((int)response.StatusCode < 500, $"Got {(int)response.StatusCode}.");
            return watch.Elapsed;
        }
    }

    public static async Task<(T Result, TimeSpan Elapsed)> TimedAsync<T>(Func<Task<T>> action)
    {
        var watch = Stopwatch.StartNew();
        var result = await action();
        return (result, watch.Elapsed);
    }

    /// <summary>A well-formed registration request, e-mail chosen independently of the username.</summary>
    public static Task<HttpResponseMessage> RegisterWithEmailAsync(this HttpClient http, string username, string email, string? password = null) =>
        http.PostRawAsync("api/accounts", JsonSerializer.Serialize(new { username, email, password = password ?? ClientFlows.Password }));

    public static string UniqueEmail() => $"m{Guid.NewGuid():N}@example.com";
}
