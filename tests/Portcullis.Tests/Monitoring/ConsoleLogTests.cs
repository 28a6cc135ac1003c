using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

/// <summary>
/// The stdout writer (<see cref="JsonConsoleLogProvider"/>): every line exactly once, whole, in each thread's order,
/// written before shutdown ends; a stdout that stops taking lines costs lines (counted), never a logging thread's time. The end to
/// end contract — what the real process prints — is in <see cref="LoggingTests"/>.
/// </summary>
public sealed partial class ConsoleLogTests
{
    [Fact]
    public async Task The_server_logs_through_the_batching_provider_and_not_the_frameworks_console_provider()
    {
        await using var server = await PortcullisServer.StartAsync();
        var providers = server.Services.GetServices<ILoggerProvider>().ToList();
        Assert.Single(providers.OfType<JsonConsoleLogProvider>());
        Assert.Empty(providers.OfType<ConsoleLoggerProvider>());
    }

    [Fact]
    public void Every_line_from_many_threads_is_written_once_whole_and_in_each_threads_order_by_the_time_dispose_returns()
    {
        const int threads = 8, perThread = 2_000;
        var output = new RecordingStream();
        // Room for every line: this is about order and wholeness; a full queue drops lines (tested below).
        using (var provider = new JsonConsoleLogProvider(Formatters(), output, maxQueuedLines: threads * perThread))
        {
            var logger = provider.CreateLogger("Test.Category");
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                for (var i = 0; i < perThread; i++)
                {
                    LogNumbered(logger, t, i);
                }
            });
        }

        var lines = output.Text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(threads * perThread, lines.Length);
        var next = new int[threads];
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line); // whole: every line is one JSON object
            var state = json.RootElement.GetProperty("State");
            Assert.Equal("Test.Category", json.RootElement.GetProperty("Category").GetString());
            var thread = state.GetProperty("Thread").GetInt32();
            Assert.Equal(next[thread]++, state.GetProperty("Line").GetInt32());
        }

        Assert.All(next, n => Assert.Equal(perThread, n));
        Assert.True(output.Writes < lines.Length / 10, $"{output.Writes} writes for {lines.Length} lines: not batched");
    }

    [Fact]
    public void A_line_logged_after_dispose_is_still_written()
    {
        var output = new RecordingStream();
        var provider = new JsonConsoleLogProvider(Formatters(), output);
        var logger = provider.CreateLogger("Late");
        provider.Dispose();
        LogText(logger, "written during shutdown");
        Assert.Contains("written during shutdown", output.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void When_stdout_stops_taking_lines_a_full_queue_drops_lines_at_once_counts_them_and_reports_them_when_stdout_takes_lines_again()
    {
        var output = new RecordingStream { Blocked = true };
        const int logged = 40;
        using (var provider = new JsonConsoleLogProvider(Formatters(), output, maxQueuedLines: 10))
        {
            var logger = provider.CreateLogger("Stuck");
            var elapsed = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < logged; i++)
            {
                LogNumbered(logger, 0, i);
            }

            // 40 lines into a queue of 10 with the writer blocked: no line waits for room (the old provider waited up
            // to 2 s for each of the 30 that found none).
            Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(1), $"logging blocked for {elapsed.Elapsed}");
            Assert.True(provider.Writer.LinesDroppedQueueFull >= logged - 11, $"{provider.Writer.LinesDroppedQueueFull} dropped");
            Assert.True(provider.Writer.IsFailing);
            output.Blocked = false; // stdout takes lines again
            for (var i = 0; i < 400 && provider.Writer.IsFailing; i++)
            {
                Thread.Sleep(10);
            }

            Assert.False(provider.Writer.IsFailing, "still failing after stdout took lines again");
            LogText(logger, "after");
        }

        var lines = output.Text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var warning = Assert.Single(lines, l => l.GetProperty("EventId").GetInt32() == 1101);
        Assert.Equal("Warning", warning.GetProperty("LogLevel").GetString());
        var dropped = warning.GetProperty("State").GetProperty("Dropped").GetInt32();
        var written = lines.Count(l => l.GetProperty("Category").GetString() == "Stuck");
        Assert.True(dropped > 0, "nothing was dropped although stdout took nothing");
        Assert.Equal(logged + 1, written + dropped); // every line either written or counted
        Assert.Contains(lines, l => l.GetProperty("Message").GetString() == "text: after");
    }

    [Fact]
    public void Lines_whose_write_fails_are_counted_as_lost_and_the_sink_reports_failing()
    {
        var output = new RecordingStream { Broken = true };
        using var provider = new JsonConsoleLogProvider(Formatters(), output);
        var logger = provider.CreateLogger("Broken");
        for (var i = 0; i < 5; i++)
        {
            LogNumbered(logger, 0, i);
        }

        for (var i = 0; i < 400 && provider.Writer.LinesDroppedWriteFailed < 5; i++)
        {
            Thread.Sleep(10);
        }

        Assert.Equal(5, provider.Writer.LinesDroppedWriteFailed);
        Assert.True(provider.Writer.WriteFailures > 0);
        Assert.True(provider.Writer.IsFailing);
    }

    [Fact]
    public void The_dropped_lines_warning_is_one_json_object()
    {
        var line = LogLineWriter.DroppedLine(12, new DateTimeOffset(2026, 12, 3, 7, 0, 0, TimeSpan.Zero), "stdout");
        Assert.EndsWith(Environment.NewLine, line, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(line);
        Assert.Equal("2026-12-03T07:00:00.000Z", json.RootElement.GetProperty("Timestamp").GetString());
        Assert.Equal(12, json.RootElement.GetProperty("State").GetProperty("Dropped").GetInt32());
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "thread {Thread} line {Line} with \"quotes\", a newline\n and é")]
    private static partial void LogNumbered(ILogger logger, int thread, int line);

    [LoggerMessage(Level = LogLevel.Warning, Message = "text: {Text}")]
    private static partial void LogText(ILogger logger, string text);

    private static List<ConsoleFormatter> Formatters()
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddJsonConsole(json => json.UseUtcTimestamp = true));
        return services.BuildServiceProvider().GetServices<ConsoleFormatter>().ToList();
    }

    /// <summary>Records what is written; while <see cref="Blocked"/>, a write waits (a stdout nobody reads).</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly MemoryStream _bytes = new();
        private volatile bool _blocked;

        public bool Blocked
        {
            get => _blocked;
            set => _blocked = value;
        }

        /// <summary>While set, every write fails as a write to a pipe without a reader does.</summary>
        public bool Broken { get; set; }

        public int Writes { get; private set; }

        public string Text
        {
            get
            {
                lock (_bytes)
                {
                    return Encoding.UTF8.GetString(_bytes.ToArray());
                }
            }
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Broken)
            {
                throw new IOException("Broken pipe");
            }

            for (var i = 0; i < 2_000 && _blocked; i++)
            {
                Thread.Sleep(5);
            }

            lock (_bytes)
            {
                _bytes.Write(buffer);
                Writes++;
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
