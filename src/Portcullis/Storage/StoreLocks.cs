using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Portcullis.Storage;

/// <summary>
/// Database-level mutual exclusion for "read, check, then write" changes that several Portcullis instances on one
/// database may make at once (the last-administrator guard, role edits, the audit hash chain). An in-process lock
/// cannot do this: two instances would both read "two administrators left" and both demote one.
/// <list type="bullet">
/// <item>PostgreSQL: a transaction-scoped advisory lock (<c>pg_advisory_xact_lock</c>), taken as the transaction's
/// first statement and released by its commit or rollback. Under READ COMMITTED every later statement sees what
/// the previous holder committed.</item>
/// <item>SQLite: Microsoft.Data.Sqlite begins a transaction of the default (serializable) isolation level with
/// <c>BEGIN IMMEDIATE</c>, which takes the database's write lock at once — so the reads after it cannot be stale.
/// (A deferred <c>BEGIN</c> would take it only at the first write, after the check.)</item>
/// </list>
/// </summary>
public static class StoreLocks
{
    /// <summary>Advisory lock keys (one 64-bit key space per database; "Portcull" in ASCII, then a number).</summary>
    public enum Name : long
    {
        /// <summary>Who is an enabled administrator: role membership, disabling and deleting users.</summary>
        AdminMembership = 0x506f7274_63756c01,

        /// <summary>Custom roles and their permissions.</summary>
        Roles = 0x506f7274_63756c02,

        /// <summary>The audit hash chain's tail (<c>AuditSeals</c>).</summary>
        AuditChain = 0x506f7274_63756c03,
    }

    /// <summary>
    /// Begins a transaction that holds <paramref name="name"/> until it commits or rolls back. Everything that must
    /// not interleave with another instance's change — the reads of the check included — goes inside it.
    /// </summary>
    public static async Task<IDbContextTransaction> BeginLockedAsync(PortcullisDb db, Name name, CancellationToken ct)
    {
        // SQLite: BEGIN IMMEDIATE (see above); it waits up to the connection's Default Timeout for the write lock.
        var tx = await db.Database.BeginTransactionAsync(ct);
        try
        {
            if (db is PostgresPortcullisDb)
            {
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({(long)name})", ct);
            }

            return tx;
        }
        catch
        {
            await tx.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Takes a second lock inside a transaction from <see cref="BeginLockedAsync"/> (SQLite: the write lock is
    /// already held). Take them in one order — <see cref="Name.Roles"/> before <see cref="Name.AdminMembership"/> — so
    /// two changes that need both cannot deadlock.
    /// </summary>
    public static async Task AlsoLockAsync(PortcullisDb db, Name name, CancellationToken ct)
    {
        if (db.Database.CurrentTransaction is null)
        {
            throw new InvalidOperationException("AlsoLockAsync needs the transaction from BeginLockedAsync.");
        }

        if (db is PostgresPortcullisDb)
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({(long)name})", ct);
        }
    }
}
