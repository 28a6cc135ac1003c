using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Audit;

/// <summary>Audit settings. Section <c>Audit</c>.</summary>
public sealed class AuditOptions
{
    public const string Section = "Audit";

    /// <summary>How often new events are sealed into the hash chain. Default 1 s.</summary>
    public TimeSpan SealInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events are sealed once this old, so transactions still in flight commit first. Default 2 s.</summary>
    public TimeSpan SealDelay { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Chains audit events: each seal hashes its event's content with the previous seal's hash (SHA-256), in event-id
/// order, once the event is older than <see cref="AuditOptions.SealDelay"/>. Editing, deleting or reordering an
/// event — or a seal — breaks the chain at that point, and <see cref="AuditChain.VerifyAsync"/> says where.
/// </summary>
public sealed partial class AuditSealer(
    IServiceScopeFactory scopes, IOptions<AuditOptions> options, TimeProvider time, Hosting.PortcullisMetrics metrics, ILogger<AuditSealer> logger)
    : BackgroundService
{
    private volatile bool _lastSealFailed;

    /// <summary>True while sealing fails (the database is unreachable or read-only); readiness reports it.</summary>
    public bool LastSealFailed => _lastSealFailed;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SealInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await SealAsync(scope.ServiceProvider.GetRequiredService<PortcullisDb>(), time.GetUtcNow() - options.Value.SealDelay, stoppingToken);
                _lastSealFailed = false;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _lastSealFailed = true;
                metrics.AuditWriteFailures.Add(1);
                LogSealFailed(logger, ex);
            }
        }
    }

    /// <summary>Seals every unsealed event up to <paramref name="cutoff"/>. Safe to run from several processes on one
    /// database: the chain's tail is read and extended under a database lock (<see cref="StoreLocks"/>), so a second
    /// sealer waits and then continues from the first one's last seal instead of forking the chain or failing on a
    /// duplicate sequence. (The unique sequence and event id still refuse a double seal should the lock be bypassed.)</summary>
    public static async Task<int> SealAsync(PortcullisDb db, DateTimeOffset cutoff, CancellationToken ct)
    {
        await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.AuditChain, ct);
        var last = await db.AuditSeals.AsNoTracking().OrderByDescending(s => s.Sequence).FirstOrDefaultAsync(ct);
        // Only recent ids can still be unsealed: look back a window before the last sealed event, not the whole table.
        var from = (last?.EventId ?? 0) - 10_000;
        var pending = await db.AuditEvents.AsNoTracking()
            .Where(e => e.Id > from && e.Timestamp <= cutoff && !db.AuditSeals.Any(s => s.EventId == e.Id))
            .OrderBy(e => e.Id)
            .Take(1000)
            .ToListAsync(ct);
        var sequence = last?.Sequence ?? 0;
        var previous = last?.Hash ?? AuditChain.Genesis;
        foreach (var e in pending)
        {
            sequence++;
            var hash = AuditChain.Compute(e, sequence, previous);
            db.AuditSeals.Add(new AuditSeal { Sequence = sequence, EventId = e.Id, PreviousHash = previous, Hash = hash });
            previous = hash;
        }

        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return pending.Count;
    }

    [LoggerMessage(EventId = EventIds.Audit.SealFailed, Level = LogLevel.Error, Message = "Sealing audit events failed; readiness reports it until a seal succeeds.")]
    private static partial void LogSealFailed(ILogger logger, Exception ex);
}

public static class AuditChain
{
    public const string Genesis = "portcullis-audit-genesis";

    public static string Compute(AuditEvent e, long sequence, string previous)
    {
        var canonical = string.Join('\u001f',
            sequence.ToString(CultureInfo.InvariantCulture), e.Id.ToString(CultureInfo.InvariantCulture),
            e.Timestamp.UtcTicks.ToString(CultureInfo.InvariantCulture), e.EventId.ToString(CultureInfo.InvariantCulture),
            e.Name, e.Outcome, e.Actor, e.ClientIp ?? "", e.Target ?? "", e.TraceId ?? "", e.Details ?? "", previous);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    public sealed record Report(bool Intact, long Checked, long Unsealed, string? Problem);

    /// <summary>A power of two.</summary>
    public const long ProgressEvery = 8192;

    /// <summary>
    /// Walks the chain in sequence order and reports the first break: where and what kind. <paramref name="progress"/>
    /// hears the count of events checked every <see cref="ProgressEvery"/> events (a mask test per event, no more).
    /// </summary>
    public static async Task<Report> VerifyAsync(PortcullisDb db, DateTimeOffset unsealedBefore, CancellationToken ct, Action<long>? progress = null)
    {
        long expected = 0;
        var previous = Genesis;
        long checkedCount = 0;
        var first = true;
        // Read before the walk: one open reader per connection (PostgreSQL allows no second command while it streams).
        var start = await db.AuditSeals.AsNoTracking().OrderBy(s => s.Sequence).FirstOrDefaultAsync(ct);
        var anchored = start is { Sequence: not 1 } && (await AuditRetention.PrunesAsync(db, ct))
            .Any(p => p.LastSequence == start.Sequence - 1 && p.AnchorHash == start.PreviousHash);
        await foreach (var row in db.AuditSeals.AsNoTracking().OrderBy(s => s.Sequence)
            .Select(s => new { Seal = s, Event = db.AuditEvents.FirstOrDefault(e => e.Id == s.EventId) })
            .AsAsyncEnumerable().WithCancellation(ct))
        {
            var seal = row.Seal;
            if (first)
            {
                // After a retention prune the chain starts later: its first seal must chain to the anchor that the
                // prune recorded (an audit_pruned event, itself sealed later in the chain). A chain that starts late
                // without one lost its oldest events some other way.
                if (seal.Sequence != 1 && !anchored)
                {
                    return new Report(false, 0, 0, $"the chain starts at sequence {seal.Sequence} but no audit_pruned event anchors it: the oldest events were deleted");
                }

                expected = seal.Sequence;
                previous = seal.PreviousHash;
                first = false;
            }

            if (seal.Sequence != expected)
            {
                return new Report(false, checkedCount, 0, $"seals {expected}..{seal.Sequence - 1} are missing (deleted) before sequence {seal.Sequence}");
            }

            if (seal.PreviousHash != previous)
            {
                return new Report(false, checkedCount, 0, $"sequence {seal.Sequence} (event {seal.EventId}) does not chain to sequence {seal.Sequence - 1}: seals were reordered or replaced");
            }

            if (row.Event is null)
            {
                return new Report(false, checkedCount, 0, $"event {seal.EventId} (sequence {seal.Sequence}) is missing: deleted");
            }

            if (Compute(row.Event, seal.Sequence, seal.PreviousHash) != seal.Hash)
            {
                return new Report(false, checkedCount, 0, $"event {seal.EventId} (sequence {seal.Sequence}) was changed after it was sealed");
            }

            previous = seal.Hash;
            expected++;
            checkedCount++;
            if ((checkedCount & (ProgressEvery - 1)) == 0)
            {
                progress?.Invoke(checkedCount);
            }
        }

        progress?.Invoke(checkedCount);

        var lastSealed = await db.AuditSeals.MaxAsync(s => (long?)s.EventId, ct) ?? 0;
        var unsealed = await db.AuditEvents.CountAsync(e => e.Timestamp < unsealedBefore && !db.AuditSeals.Any(s => s.EventId == e.Id), ct);
        if (unsealed > 0 && await db.AuditEvents.AnyAsync(e => e.Id < lastSealed && e.Timestamp < unsealedBefore && !db.AuditSeals.Any(s => s.EventId == e.Id), ct))
        {
            return new Report(false, checkedCount, unsealed, "events older than the last seal are not in the chain: inserted after the fact");
        }

        return new Report(true, checkedCount, unsealed, null);
    }
}
