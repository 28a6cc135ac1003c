using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

/// <summary>
/// <c>Logging:Format</c>: text lines for people (on a terminal, or when set to Text), JSON for machines (otherwise, or
/// when set to Json) — and the text lines carry no more than the JSON ones: no secret, no forged line, no escape
/// sequence (<see cref="ConsoleLogFormats"/>). What the real process prints is read from a child process.
/// </summary>
public sealed partial class ConsoleFormatTests
{
    /// <summary>Time, level, category[event id], message: the simple console formatter's single line.</summary>
    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} (trce|dbug|info|warn|fail|crit): [\w.]+\[\d+\] ")]
    private static partial Regex TextLine();

    [Theory]
    [InlineData(null, true, ConsoleLogFormat.Text)]
    [InlineData(null, false, ConsoleLogFormat.Json)]
    [InlineData("", true, ConsoleLogFormat.Text)]
    [InlineData("Json", true, ConsoleLogFormat.Json)]
    [InlineData("json", true, ConsoleLogFormat.Json)]
    [InlineData("Text", false, ConsoleLogFormat.Text)]
    [InlineData("TEXT", true, ConsoleLogFormat.Text)]
    public void Text_on_a_terminal_and_json_otherwise_unless_Logging_Format_says_which(string? configured, bool terminal, ConsoleLogFormat expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Format"] = configured }).Build();
        Assert.Equal(expected, ConsoleLogFormats.Select(configuration, terminal));
    }

    [Fact]
    public void An_unknown_Logging_Format_stops_start_up_naming_the_setting_and_the_choices()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Logging:Format"] = "pretty" }).Build();
        var refused = Assert.Throws<StartupException>(() => ConsoleLogFormats.Select(configuration, stdoutIsTerminal: true));
        Assert.Equal("Logging:Format is 'pretty': set it to Json or Text, or leave it unset (text on a terminal, JSON otherwise).", refused.Message);
    }

    [Fact]
    public void L05_text_lines_escape_every_control_character_but_their_own_line_break()
    {
        var line = new StringBuilder("12:00:00.000 warn: X[1] bob\r\n{\"forged\":1}\u2028\u0085\u001b[31mred\u202Eevil\t." + Environment.NewLine);
        var escaped = ConsoleLogFormats.EscapeControls(line);
        Assert.Equal(@"12:00:00.000 warn: X[1] bob\u000D\u000A{""forged"":1}\u2028\u0085\u001B[31mred\u202Eevil\u0009." + Environment.NewLine, escaped);
        Assert.Equal("plain" + Environment.NewLine, ConsoleLogFormats.EscapeControls(new StringBuilder("plain" + Environment.NewLine)));
    }

    [Fact]
    public async Task L05_L02_with_Logging_Format_Text_stdout_is_text_lines_with_request_lines_no_secrets_and_no_forged_lines()
    {
        await using var server = await ChildServer.StartAsync(settings: new Dictionary<string, string?> { ["Logging:Format"] = "Text" });
        using var http = server.Client();
        var name = ClientFlows.UniqueName("texted");
        await http.RegisterOkAsync(name);
        var tokens = await http.LoginAsync(name);
        SecretCanary.Suite.Record(tokens.AccessToken);
        SecretCanary.Suite.Record(tokens.RefreshToken);
        using (var me = await http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        const string Forged = "bob\r\n12:00:00.000 info: Portcullis.Requests[1100] forged\u2028\u001b[31m";
        using (await http.PasswordGrantAsync(Forged, Forged))
        {
        }

        using (await http.RefreshAsync(tokens.RefreshToken!))
        {
        }

        const string PathPii = "path-owner@example.com";
        using (await http.GetWithTokenAsync($"api/users/{PathPii}/orders?email={PathPii}", tokens.AccessToken))
        {
        }

        Assert.True(
            await Refusal.EventuallyAsync(() => Task.FromResult(server.Stdout.Contains("GET (no route) 404", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "The last request's log line never appeared: " + server.Stdout);
        var text = server.Stdout;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Matches(TextLine(), l));
        Assert.Contains(lines, l => l.Contains("Portcullis.Requests[1100] GET /api/me 200", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Portcullis.Requests[1100] POST /connect/token", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("forged", StringComparison.Ordinal) && !l.Contains(@"\u000D\u000A", StringComparison.Ordinal));
        Assert.DoesNotContain('\u001b', text);
        Assert.DoesNotContain('\u2028', text);

        // Nothing the JSON lines would not carry: no secret in any form, no raw path.
        Assert.Equal(0, SecretCanary.Suite.Scan($"{nameof(ConsoleFormatTests)}: text stdout", text));
        Assert.DoesNotContain(ClientFlows.Password, text, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Bearer ", text, StringComparison.Ordinal);
        Assert.DoesNotContain(PathPii, text, StringComparison.Ordinal);
        Assert.DoesNotContain(name, text, StringComparison.Ordinal); // usernames are written as keyed hashes
    }

    [Fact]
    public async Task With_Logging_Format_Json_stdout_is_json_lines()
    {
        await using var server = await ChildServer.StartAsync(settings: new Dictionary<string, string?> { ["Logging:Format"] = "Json" });
        using var http = server.Client();
        using (await http.GetAsync("health/live"))
        {
        }

        Assert.True(
            await Refusal.EventuallyAsync(() => Task.FromResult(server.Stdout.Contains("GET /health/live 200", StringComparison.Ordinal)), TimeSpan.FromSeconds(15)),
            "The request's log line never appeared: " + server.Stdout);
        Assert.All(server.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l =>
        {
            using var json = JsonDocument.Parse(l); // throws on any line that is not one JSON object
            Assert.True(json.RootElement.TryGetProperty("LogLevel", out _));
        });
    }
}
