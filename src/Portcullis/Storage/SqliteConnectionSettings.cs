using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Portcullis.Hosting;

namespace Portcullis.Storage;

/// <summary>
/// Per-connection SQLite settings, applied on every open through the native handle (one call each; the handle is
/// pooled and keeps them, but setting them again is cheaper than remembering which handles have them).
/// <para>
/// Busy timeout: SQLite has one writer at a time. When a second request wants to write, Microsoft.Data.Sqlite
/// answers SQLite's immediate <c>SQLITE_BUSY</c> by sleeping 150 ms and trying again (it sets no busy timeout of
/// its own), so under concurrent token grants most of the time went to those sleeps while the writes themselves
/// take well under a millisecond. With a busy timeout, SQLite itself waits for the lock in steps of 1–100 ms and
/// takes it soon after the writer commits. The driver's retry, bounded by the command timeout, stays behind it.
/// </para>
/// <para>Synchronous: <see cref="StorageOptions.SqliteSynchronous"/> (not persistent in the file, so per connection).</para>
/// </summary>
public sealed class SqliteConnectionSettings(StorageOptions storage) : DbConnectionInterceptor
{
    private readonly int busyTimeoutMs = checked(storage.TimeoutSeconds * 1000);
    private readonly bool normalSync = string.Equals(storage.SqliteSynchronous, StorageOptions.SynchronousNormal, StringComparison.OrdinalIgnoreCase);

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Apply(connection);
        return Task.CompletedTask;
    }

    private void Apply(DbConnection connection)
    {
        if (connection is not SqliteConnection { Handle: { } handle })
        {
            return;
        }

        SQLitePCL.raw.sqlite3_busy_timeout(handle, busyTimeoutMs);
        if (normalSync && SQLitePCL.raw.sqlite3_exec(handle, "PRAGMA synchronous=NORMAL;") != SQLitePCL.raw.SQLITE_OK)
        {
            throw new InvalidOperationException("SQLite refused PRAGMA synchronous=NORMAL.");
        }
    }
}
