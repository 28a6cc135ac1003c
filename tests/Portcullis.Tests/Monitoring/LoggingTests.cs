using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

/// <summary>
/// The log contract is what the real process writes to stdout, so these tests run the real executable
/// (<c>portcullis serve</c>) as a child process (<see cref="ChildServer"/>) and read its output.
/// </summary>
public sealed class LoggingTests
{
    [Fact]
    public async Task L05_L02_stdout_is_one_json_object_per_line_with_request_lines_no_secrets_and_no_forged_lines()
    {
        await using var server = await ChildServer.StartAsync();
        using var http = server.Client();
        var name = ClientFlows.UniqueName("logged");
        await http.RegisterOkAsync(name);
        var tokens = await http.LoginAsync(name);
        using (var me = await http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        const string Forged = "bob\r\n{\"ts\":\"2026-01-01T00:00:00Z\",\"event\":\"authn_login_success\",\"userId\":\"x\"}\u2028\u001b[31m";
        using (await http.PasswordGrantAsync(Forged, Forged))
        {
        }

        using (await http.GetWithTokenAsync("api/me", "eyJhbGciOiJFUzI1NiJ9.broken"))
        {
        }

        using (await http.RefreshAsync(tokens.RefreshToken!))
        {
        }

        // A raw path (and query) can carry personal data: no line may hold it, in any field.
        const string PathPii = "path-owner@example.com";
        using (await http.GetWithTokenAsync($"api/users/{PathPii}/orders?email={PathPii}", tokens.AccessToken))
        {
        }

        // The console logger writes on its own thread: wait until the last request's line is out (lines are written
        // in order, so every line before it is too), rather than sleeping and hoping.
        Assert.True(
            await Refusal.EventuallyAsync(() => Task.FromResult(server.Stdout.Contains("GET (no route) 404", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "The last request's log line never appeared: " + server.Stdout);
        var lines = server.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        var parsed = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList(); // throws on any non-JSON line
        Assert.All(parsed, p => Assert.True(p.TryGetProperty("Timestamp", out _) && p.TryGetProperty("LogLevel", out _)));

        // A request line per request: method, route template, status — with the trace id and the caller's user id.
        var requestLines = parsed.Where(p => p.GetProperty("Category").GetString() == "Portcullis.Requests").Select(p => p.GetProperty("Message").GetString()!).ToList();
        Assert.Contains(requestLines, m => m.StartsWith("GET /api/me 200", StringComparison.Ordinal));
        Assert.Contains(requestLines, m => m.StartsWith("POST /connect/token", StringComparison.Ordinal));
        Assert.Contains(requestLines, m => m.StartsWith("GET /api/me 401", StringComparison.Ordinal));
        var text = string.Join('\n', lines);
        Assert.Contains("\"UserId\"", text, StringComparison.Ordinal);
        Assert.Contains(parsed, p => p.GetProperty("Category").GetString() == "Portcullis.Requests"
            && p.GetProperty("State").TryGetProperty("TraceId", out var trace) && trace.GetString()!.Length == 32);
        Assert.DoesNotContain(PathPii, text, StringComparison.Ordinal);
        Assert.DoesNotContain(PathPii.Replace("@", "%40", StringComparison.Ordinal), text, StringComparison.Ordinal);
        Assert.Contains("\"ClientIp\": \"127.0.0.1\"", text.Replace("\":\"", "\": \"", StringComparison.Ordinal), StringComparison.Ordinal);

        // No secret of any kind, and the forged text never starts its own line.
        Assert.DoesNotContain(ClientFlows.Password, text, StringComparison.Ordinal);
        Assert.DoesNotContain(tokens.AccessToken, text, StringComparison.Ordinal);
        Assert.DoesNotContain(tokens.RefreshToken!, text, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Bearer ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("$argon2", text, StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.StartsWith("{\"ts\"", StringComparison.Ordinal));
        Assert.DoesNotContain(parsed, p => p.TryGetProperty("event", out _));
    }
}
