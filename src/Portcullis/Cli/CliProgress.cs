using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Portcullis.Cli;

/// <summary>
/// Progress of long CLI work, on standard error so standard output stays the command's result: a Spectre.Console bar
/// with the rate and the time left when standard error is a terminal, otherwise a plain line every few seconds and
/// one at the end (logs and CI keep a record without escape codes).
/// </summary>
internal static class CliProgress
{
    private static readonly TimeSpan PlainLineInterval = TimeSpan.FromSeconds(5);

    /// <summary>Runs <paramref name="work"/>, which reports how many of <paramref name="total"/> <paramref name="unit"/> are done.</summary>
    public static async Task<T> RunAsync<T>(CliIo io, string what, string unit, long total, Func<Action<long>, Task<T>> work)
    {
        if (ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            return await console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(unit), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(what, maxValue: Math.Max(total, 1));
                    var result = await work(done => task.Value = done);
                    task.Value = task.MaxValue;
                    return result;
                });
        }

        var clock = Stopwatch.StartNew();
        var lastLine = TimeSpan.Zero;
        var last = 0L;
        var outcome = await work(done =>
        {
            last = done;
            if (clock.Elapsed - lastLine >= PlainLineInterval)
            {
                lastLine = clock.Elapsed;
                io.Error.WriteLine(Line(what, unit, done, total, clock.Elapsed, final: false));
            }
        });
        // The total was counted before the work; a server still writing may have added to it since.
        await io.Error.WriteLineAsync(Line(what, unit, last, Math.Max(last, total), clock.Elapsed, final: true));
        return outcome;
    }

    /// <summary><c>audit verify: 1,200,000 of 3,000,000 events (40%), 250,000/s, about 00:00:07 left</c>.</summary>
    internal static string Line(string what, string unit, long done, long total, TimeSpan elapsed, bool final)
    {
        var culture = CultureInfo.InvariantCulture;
        var percent = total > 0 ? Math.Min(100, done * 100 / total) : 100;
        var counted = string.Format(culture, "{0}: {1:N0} of {2:N0} {3} ({4}%)", what, done, total, unit, percent);
        if (final)
        {
            return counted + string.Format(culture, " in {0:hh\\:mm\\:ss}", elapsed);
        }

        var rate = elapsed.TotalSeconds > 0 ? done / elapsed.TotalSeconds : 0;
        var left = rate > 0 ? TimeSpan.FromSeconds(Math.Ceiling((total - done) / rate)) : (TimeSpan?)null;
        return counted + string.Format(culture, ", {0:N0}/s", rate) + (left is { } l ? string.Format(culture, ", about {0:hh\\:mm\\:ss} left", l) : "");
    }

    /// <summary>Items per second (Spectre's own speed column formats bytes).</summary>
    private sealed class RateColumn(string unit) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } speed ? string.Format(CultureInfo.InvariantCulture, "{0:N0} {1}/s", speed, unit) : "");
    }
}
