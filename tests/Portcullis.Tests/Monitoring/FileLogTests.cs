using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

public sealed class FileLogTests
{
    [Fact]
    public async Task Logging_File_Path_writes_the_same_json_lines_as_stdout_to_a_file()
    {
        var logs = Directory.CreateTempSubdirectory("portcullis-filelog-").FullName;
        try
        {
            var server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
            {
                ["Logging:File:Path"] = Path.Combine(logs, "portcullis-.log"),
                ["Logging:File:RollDaily"] = "false",
            });
            string captured;
            await using (server)
            {
                using var http = server.CreateClient();
                using (var live = await http.GetAsync("health/live"))
                {
                    Assert.Equal(HttpStatusCode.OK, live.StatusCode);
                }

                using (await http.PasswordGrantAsync("someone-unknown@example.com", "not the password at all"))
                {
                }

                captured = server.Logs.Text; // (stopping hands the capture to the canary and clears it)
                await server.StopKeepingDataAsync(); // flushes the file
            }

            var file = Assert.Single(Directory.GetFiles(logs));
            var lines = (await File.ReadAllTextAsync(file)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var parsed = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList(); // every line is one JSON object
            Assert.Contains(parsed, p => p.GetProperty("Message").GetString()!.StartsWith("GET /health/live 200", StringComparison.Ordinal));
            var failed = Assert.Single(parsed, p => p.GetProperty("EventId").GetInt32() == 2001);
            Assert.DoesNotContain("someone-unknown", failed.GetProperty("Message").GetString()!, StringComparison.Ordinal); // redacted there too
            // Byte for byte what the console formatter wrote, apart from the time: each provider formats the entry
            // itself and stamps it then, so the two stamps can straddle a millisecond on a busy machine.
            Assert.Contains(WithoutTimestamp(failed.GetRawText()), WithoutTimestamp(captured), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(logs, recursive: true);
        }
    }

    private static string WithoutTimestamp(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, "\"Timestamp\":\"[^\"]*\",", "");

    [Fact]
    public async Task An_unusable_file_log_setting_stops_start_up_with_a_message()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["Logging:File:Path"] = "/tmp/portcullis-never.log",
            ["Logging:File:FileSizeLimitBytes"] = "10",
        }));
        Assert.Contains("FileSizeLimitBytes", failure.Message, StringComparison.Ordinal);
    }
}
