using Microsoft.EntityFrameworkCore;

namespace Portcullis.Storage;

/// <summary>
/// SQLite has one writer at a time, and a connection that finds the write lock taken sleeps in SQLite's busy handler
/// — 1, 2, 5, 10, … up to 100 ms between tries — however soon the lock is free again, so under a burst of writers the
/// lock sits idle while they sleep (BENCHMARKS.md, "The token endpoint waits for the SQLite write lock"). Write
/// transactions that take a lease (the token endpoint's) therefore queue for one in-process gate first, which hands
/// the lock to the next request the moment a commit releases it; SQLite's busy timeout still covers other writers
/// (background jobs, the CLI). On PostgreSQL, which has row locks and many writers, there is no gate. The lease is
/// scoped: a request that fails between begin and commit releases it when its scope ends.
/// </summary>
public sealed class WriteLease(WriteLease.Gate gate) : IDisposable
{
    /// <summary>The one turn of this server (a singleton: one database per server).</summary>
    public sealed class Gate : IDisposable
    {
        internal SemaphoreSlim Turn { get; } = new(1, 1);

        public void Dispose() => Turn.Dispose();
    }

    private bool _held;

    public async Task AcquireAsync(PortcullisDb db, CancellationToken ct)
    {
        if (_held || !db.Database.IsSqlite())
        {
            return;
        }

        // Bounded like SQLite's own wait: past it, go on and let SQLite's busy timeout decide.
        _held = await gate.Turn.WaitAsync(db.Database.GetCommandTimeout() is { } seconds ? TimeSpan.FromSeconds(seconds) : TimeSpan.FromSeconds(30), ct);
    }

    public void Release()
    {
        if (_held)
        {
            _held = false;
            gate.Turn.Release();
        }
    }

    public void Dispose() => Release();
}
