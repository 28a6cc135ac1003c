namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A clock whose wall time can be stepped forward and backward (NTP, an operator, a resumed VM) while its monotonic
/// timestamp only moves when the test advances it — the two clocks a real machine has. FakeTimeProvider cannot do
/// this: its SetUtcNow refuses to go back, and its timestamp is derived from its wall time. Timers are the system's
/// (the base class), so background services keep running on real time.
/// </summary>
public sealed class SteppingClock(DateTimeOffset start) : TimeProvider
{
    private readonly Lock _lock = new();
    private TimeSpan _elapsed;
    private TimeSpan _stepped;

    public SteppingClock()
        : this(DateTimeOffset.UtcNow)
    {
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_lock)
        {
            return _elapsed.Ticks;
        }
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock)
        {
            return start + _elapsed + _stepped;
        }
    }

    /// <summary>Time passes: both clocks move by <paramref name="by"/>.</summary>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        lock (_lock)
        {
            _elapsed += by;
        }
    }

    /// <summary>The wall clock is set: only <see cref="GetUtcNow"/> moves, by <paramref name="by"/> (either sign).</summary>
    public void StepWallClock(TimeSpan by)
    {
        lock (_lock)
        {
            _stepped += by;
        }
    }
}
