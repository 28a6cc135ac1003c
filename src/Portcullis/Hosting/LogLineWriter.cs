using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Hosting;

/// <summary>
/// A JSON line provider whose lines go through a <see cref="LogLineWriter"/>: the logging thread formats its line and
/// queues it, and never waits for the destination. <see cref="LogSinks"/> finds the writers of these providers.
/// </summary>
public abstract class QueuedJsonLineProvider(IEnumerable<ConsoleFormatter> formatters, LogLineWriter writer, string formatterName = ConsoleFormatterNames.Json)
    : JsonLineProvider(formatters, formatterName)
{
    public LogLineWriter Writer { get; } = writer;

    protected sealed override void WriteLine(string line) => Writer.Enqueue(line);

    /// <summary>Writes what is queued, then stops the writer.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Writer.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// One thread that writes finished lines to a stream: loggers add lines to a lock-free queue; the thread takes all
/// that are there, writes them as UTF-8 in as few writes as its buffer allows, and sleeps when the queue is empty.
/// A destination that stops taking lines costs lines, never a logging thread's time: past the queue's limit a line is
/// dropped at once, a failed write loses its lines, and both are counted here — for the metrics, for readiness
/// (<see cref="IsFailing"/>) and for the <c>log_sink_failed</c> alert (<see cref="LogSinkMonitor"/>). When lines flow
/// again, a warning line says how many were lost.
/// </summary>
public sealed class LogLineWriter : IDisposable
{
    private const int BufferBytes = 64 * 1024;

    /// <summary>How long the writer pauses between looks while lines keep coming: the most a line waits to be written.</summary>
    private const int BusyPauseMs = 5;

    /// <summary>Empty looks (of <see cref="BusyPauseMs"/> each, ≈ 0.5 s) before the writer sleeps until woken.</summary>
    private const int QuietPolls = 100;

    /// <summary>A single write that has not returned after this long means the destination is stuck, lines lost or not.</summary>
    public static readonly TimeSpan StuckAfter = TimeSpan.FromSeconds(5);

    private readonly ConcurrentQueue<string> _queue = new();
    private readonly Stream _output;
    private readonly bool _ownsOutput;
    private readonly Thread _thread;
    private readonly AutoResetEvent _wake = new(false);
    private readonly byte[] _buffer = new byte[BufferBytes];
    private readonly int _maxQueued;
    private int _used;
    private int _bufferedLines;
    private int _queued;
    private int _sleeping;
    private volatile bool _stopping;
    private volatile bool _stopped;

    // Lost lines not yet reported in a warning line; and the totals, which only grow (metrics read them).
    private long _unreported;
    private long _droppedQueueFull;
    private long _droppedWriteFailed;
    private long _writeFailures;

    // Stopwatch timestamps: the last lost line or failed write, the last successful write, and the start of the write in
    // progress (0 when none).
    private long _lastProblem;
    private long _lastSuccess;
    private long _writeStarted;

    public LogLineWriter(string sink, Stream output, int maxQueued, bool ownsOutput)
    {
        Sink = sink;
        _output = output;
        _ownsOutput = ownsOutput;
        _maxQueued = maxQueued;
        _thread = new Thread(Run) { IsBackground = true, Name = $"Portcullis log writer ({sink})" };
        _thread.Start();
    }

    /// <summary>The destination's name in metrics, alerts and warnings: <c>stdout</c> or <c>file</c>.</summary>
    public string Sink { get; }

    /// <summary>Lines dropped because the queue was full (the destination did not keep up or is stuck).</summary>
    public long LinesDroppedQueueFull => Interlocked.Read(ref _droppedQueueFull);

    /// <summary>Lines lost in writes that failed.</summary>
    public long LinesDroppedWriteFailed => Interlocked.Read(ref _droppedWriteFailed);

    /// <summary>Writes (each of many lines) that failed.</summary>
    public long WriteFailures => Interlocked.Read(ref _writeFailures);

    /// <summary>
    /// True from a lost line or failed write until a later write succeeds, and while one write has been stuck for
    /// <see cref="StuckAfter"/>.
    /// </summary>
    public bool IsFailing
    {
        get
        {
            var started = Volatile.Read(ref _writeStarted);
            if (started != 0 && Stopwatch.GetElapsedTime(started) >= StuckAfter)
            {
                return true;
            }

            var problem = Volatile.Read(ref _lastProblem);
            return problem != 0 && problem >= Volatile.Read(ref _lastSuccess);
        }
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

        if (Volatile.Read(ref _queued) >= _maxQueued)
        {
            // Full: dropped at once. Waiting for room would hand a stuck destination's delay to every request.
            Interlocked.Increment(ref _droppedQueueFull);
            Interlocked.Increment(ref _unreported);
            Volatile.Write(ref _lastProblem, Stopwatch.GetTimestamp());
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

        if (any && Flush())
        {
            // The destination takes lines again: say how many it lost. If this write fails too, they stay unreported.
            var lost = Interlocked.Exchange(ref _unreported, 0);
            if (lost > 0)
            {
                WriteLine(DroppedLine(lost, DateTimeOffset.UtcNow, Sink));
                _bufferedLines = 0; // the warning is not a logged line: it is not counted as lost if its write fails
                if (!Flush())
                {
                    Interlocked.Add(ref _unreported, lost);
                }
            }
        }

        return any;
    }

    /// <summary>The warning written when lines were lost: the count, the sink and the time, nothing from a log entry.</summary>
    internal static string DroppedLine(long count, DateTimeOffset now, string sink) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{{\"Timestamp\":\"{now:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"EventId\":{EventIds.Hosting.LogLinesDropped},\"LogLevel\":\"Warning\",\"Category\":\"Portcullis.Logging\",\"Message\":\"{count} log lines were dropped: {sink} did not take them\",\"State\":{{\"Dropped\":{count},\"Sink\":\"{sink}\"}}}}{Environment.NewLine}");

    private void WriteLine(string line)
    {
        var bytes = Encoding.UTF8.GetMaxByteCount(line.Length);
        if (bytes > BufferBytes - _used)
        {
            Flush();
        }

        if (bytes > BufferBytes)
        {
            Write(Encoding.UTF8.GetBytes(line), 1);
            return;
        }

        _used += Encoding.UTF8.GetBytes(line, _buffer.AsSpan(_used));
        _bufferedLines++;
    }

    /// <summary>Writes the buffer; false when the write failed.</summary>
    private bool Flush()
    {
        var ok = true;
        if (_used > 0)
        {
            ok = Write(_buffer.AsSpan(0, _used), _bufferedLines);
            _used = 0;
        }

        _bufferedLines = 0;
        return ok;
    }

    private bool Write(ReadOnlySpan<byte> bytes, int lines)
    {
        Volatile.Write(ref _writeStarted, Stopwatch.GetTimestamp());
        try
        {
            _output.Write(bytes);
            _output.Flush();
            Volatile.Write(ref _lastSuccess, Stopwatch.GetTimestamp());
            return true;
        }
#pragma warning disable CA1031 // whatever the destination throws, this thread must live on: an exception escaping it ends the process
        catch (Exception)
#pragma warning restore CA1031
        {
            // stdout closed (its reader went away), a full disk, a log file that cannot be created: these lines are
            // lost. Counted, and the sink reports failing until a write succeeds again; the server goes on.
            Interlocked.Increment(ref _writeFailures);
            Interlocked.Add(ref _droppedWriteFailed, lines);
            Interlocked.Add(ref _unreported, lines);
            Volatile.Write(ref _lastProblem, Stopwatch.GetTimestamp());
            return false;
        }
        finally
        {
            Volatile.Write(ref _writeStarted, 0);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (!_thread.Join(TimeSpan.FromSeconds(5)))
        {
            return; // a stuck destination: do not hang the shutdown (nor touch the output the writer is blocked in)
        }

        _wake.Dispose(); // the writer is gone, and later lines are written at once without it
        if (_ownsOutput)
        {
            _output.Dispose();
        }
    }
}
