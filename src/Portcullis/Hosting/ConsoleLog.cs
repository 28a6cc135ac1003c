using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Hosting;

/// <summary>
/// The JSON lines on stdout. Each entry is formatted by the framework's JSON console formatter (the same text, options
/// and <c>Logging:Console</c> settings as <c>AddJsonConsole</c>) on the thread that logs it; only the hand-over and the
/// write differ from the framework's console provider. That provider takes one lock per line to queue it and issues one
/// write to stdout per line: with one request line per request, a profile of <c>/api/me</c> under load had threads
/// spinning on that lock, and the request line cost about 40% of the request's CPU. Here a line is handed over through
/// a lock-free queue and a single writer thread writes everything queued in one call. While stdout keeps up nothing is
/// dropped: when the writer falls <see cref="MaxQueuedLines"/> behind, loggers wait for it, as the framework's provider
/// does by default, but for at most <see cref="MaxWait"/>. A line that still finds no room is dropped and counted, and
/// the count is written as a warning line as soon as stdout takes lines again.
/// </summary>
[ProviderAlias("Console")] // Logging:Console:LogLevel and Logging:Console:FormatterOptions keep working
public sealed class JsonConsoleLogProvider : JsonLineProvider
{
    private readonly LogLineWriter _writer;

    public JsonConsoleLogProvider(IEnumerable<ConsoleFormatter> formatters)
        : this(formatters, Console.OpenStandardOutput())
    {
    }

    internal JsonConsoleLogProvider(IEnumerable<ConsoleFormatter> formatters, Stream output, int maxQueuedLines = MaxQueuedLines, TimeSpan? maxWait = null)
        : base(formatters) => _writer = new LogLineWriter(output, maxQueuedLines, maxWait ?? MaxWait);

    /// <summary>At most this many formatted lines wait for the writer; past it, a logging thread waits.</summary>
    public const int MaxQueuedLines = 10_000;

    /// <summary>
    /// How long a logging thread waits for room before its line is dropped (and counted, see
    /// <see cref="LogLineWriter.DroppedLine"/>): a stdout that stops taking lines must not stop the server.
    /// </summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Logs JSON lines to stdout: registers the framework's console formatters (with <paramref name="configure"/> for
    /// the JSON one) and this provider in place of the framework's console provider.
    /// </summary>
    public static ILoggingBuilder AddTo(ILoggingBuilder logging, Action<JsonConsoleFormatterOptions> configure)
    {
        logging.AddJsonConsole(configure);
        foreach (var framework in logging.Services.Where(d => d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider)).ToList())
        {
            logging.Services.Remove(framework);
        }

        logging.Services.AddSingleton<ILoggerProvider, JsonConsoleLogProvider>();
        return logging;
    }

    protected override void WriteLine(string line) => _writer.Enqueue(line);

    /// <summary>Writes what is queued, then stops the writer.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _writer.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// One thread that writes finished lines to a stream: loggers add lines to a lock-free queue; the thread takes all
/// that are there, writes them as UTF-8 in as few writes as its buffer allows, and sleeps when the queue is empty.
/// </summary>
internal sealed class LogLineWriter : IDisposable
{
    private const int BufferBytes = 64 * 1024;

    /// <summary>How long the writer pauses between looks while lines keep coming: the most a line waits to be written.</summary>
    private const int BusyPauseMs = 5;

    /// <summary>Empty looks (of <see cref="BusyPauseMs"/> each, ≈ 0.5 s) before the writer sleeps until woken.</summary>
    private const int QuietPolls = 100;

    private readonly ConcurrentQueue<string> _queue = new();
    private readonly Stream _output;
    private readonly Thread _thread;
    private readonly AutoResetEvent _wake = new(false);
    private readonly byte[] _buffer = new byte[BufferBytes];
    private readonly int _maxQueued;
    private readonly TimeSpan _maxWait;
    private int _used;
    private int _queued;
    private int _sleeping;
    private long _dropped;
    private volatile bool _stopping;
    private volatile bool _stopped;

    public LogLineWriter(Stream output, int maxQueued, TimeSpan maxWait)
    {
        _output = output;
        _maxQueued = maxQueued;
        _maxWait = maxWait;
        _thread = new Thread(Run) { IsBackground = true, Name = "Portcullis log writer" };
        _thread.Start();
    }

    public void Enqueue(string line)
    {
        if (_stopped)
        {
            lock (_queue)
            {
                WriteLine(line); // after Dispose (a late line during shutdown): written at once, not lost
                Flush();
            }

            return;
        }

        if (Volatile.Read(ref _queued) >= _maxQueued && !WaitForRoom())
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        Interlocked.Increment(ref _queued);
        _queue.Enqueue(line);
        if (Volatile.Read(ref _sleeping) == 1 && Interlocked.CompareExchange(ref _sleeping, 0, 1) == 1)
        {
            _wake.Set();
        }

        if (_stopped)
        {
            lock (_queue)
            {
                WriteQueued(); // the writer stopped between the check above and the enqueue
            }
        }
    }

    private bool WaitForRoom()
    {
        var deadline = Environment.TickCount64 + (long)_maxWait.TotalMilliseconds;
        while (Volatile.Read(ref _queued) >= _maxQueued)
        {
            if (_stopped || Environment.TickCount64 >= deadline)
            {
                return _stopped; // after the writer stopped, lines are written at once; before, this one is dropped
            }

            Thread.Sleep(1);
        }

        return true;
    }

    private void Run()
    {
        var quiet = 0;
        while (true)
        {
            if (WriteQueued())
            {
                // Busy: let lines gather for a moment, so the next write carries many and no logger has to wake this
                // thread (setting an event costs a logging thread more than formatting its line).
                quiet = 0;
                Thread.Sleep(BusyPauseMs);
                continue;
            }

            if (_stopping)
            {
                break;
            }

            if (++quiet < QuietPolls)
            {
                Thread.Sleep(BusyPauseMs);
                continue;
            }

            // Quiet for a while: sleep until a logger wakes the thread. Announce the sleep, then look once more: a line
            // queued before the announcement is seen here, one queued after it finds _sleeping set and wakes the thread
            // (the interlocked operations order the two).
            Interlocked.Exchange(ref _sleeping, 1);
            if (_queue.IsEmpty && !_stopping)
            {
                _wake.WaitOne(TimeSpan.FromSeconds(1));
            }

            Interlocked.Exchange(ref _sleeping, 0);
            quiet = 0;
        }

        lock (_queue)
        {
            _stopped = true;
            WriteQueued(); // anything queued between the last look and _stopped
        }
    }

    /// <summary>Writes every queued line; false when there was none.</summary>
    private bool WriteQueued()
    {
        var any = false;
        while (_queue.TryDequeue(out var line))
        {
            Interlocked.Decrement(ref _queued);
            any = true;
            WriteLine(line);
        }

        if (any)
        {
            var dropped = Interlocked.Exchange(ref _dropped, 0);
            if (dropped > 0)
            {
                WriteLine(DroppedLine(dropped, DateTimeOffset.UtcNow));
            }

            Flush();
        }

        return any;
    }

    /// <summary>The warning written when lines were dropped: the count and the time, nothing from a log entry.</summary>
    internal static string DroppedLine(long count, DateTimeOffset now) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{{\"Timestamp\":\"{now:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"EventId\":1101,\"LogLevel\":\"Warning\",\"Category\":\"Portcullis.Logging\",\"Message\":\"{count} log lines were dropped: stdout did not take them\",\"State\":{{\"Dropped\":{count}}}}}{Environment.NewLine}");

    private void WriteLine(string line)
    {
        var bytes = Encoding.UTF8.GetMaxByteCount(line.Length);
        if (bytes > BufferBytes - _used)
        {
            Flush();
        }

        if (bytes > BufferBytes)
        {
            Write(Encoding.UTF8.GetBytes(line));
            return;
        }

        _used += Encoding.UTF8.GetBytes(line, _buffer.AsSpan(_used));
    }

    private void Flush()
    {
        if (_used > 0)
        {
            Write(_buffer.AsSpan(0, _used));
            _used = 0;
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        try
        {
            _output.Write(bytes);
            _output.Flush();
        }
        catch (IOException)
        {
            // stdout closed or full (a detached terminal, a broken pipe): the line cannot go anywhere; the server
            // goes on, as it does with the framework's console logger.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (!_thread.Join(TimeSpan.FromSeconds(5)))
        {
            return; // a stuck stdout: do not hang the shutdown
        }

        _wake.Dispose(); // the writer is gone, and later lines are written at once without it
    }
}
