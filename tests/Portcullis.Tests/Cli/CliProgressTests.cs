using Portcullis.Cli;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// Long CLI work reports progress on standard error; not on a terminal (as here) as plain lines, so standard output
/// stays the command's result.
/// </summary>
public sealed class CliProgressTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Audit_verify_off_a_terminal_prints_one_plain_progress_line_and_its_result()
    {
        await fixture.Client.NewUserAsync("progress"); // a few audit events to verify

        var verify = await fixture.Server.RunCliAsync(null, "audit", "verify");

        Assert.True(verify.ExitCode == CliApp.Ok, verify.Out + verify.Error);
        var result = System.Text.RegularExpressions.Regex.Match(verify.Out, @"^OK: (\d+) events, chain intact\.");
        Assert.True(result.Success, verify.Out);
        var checkedEvents = long.Parse(result.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Matches($@"^audit verify: {checkedEvents:N0} of {checkedEvents:N0} events \(100%\) in \d\d:\d\d:\d\d\n$", verify.Error.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("\u001b", verify.Error, StringComparison.Ordinal); // no escape codes off a terminal
    }

    [Fact]
    public void A_plain_progress_line_states_the_count_the_rate_and_the_time_left()
    {
        var line = CliProgress.Line("audit verify", "events", 1_200_000, 3_000_000, TimeSpan.FromSeconds(4.8), final: false);

        Assert.Equal("audit verify: 1,200,000 of 3,000,000 events (40%), 250,000/s, about 00:00:08 left", line);
    }
}
