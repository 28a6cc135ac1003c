using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portcullis.Storage;

namespace Portcullis.Audit;

/// <summary>
/// Retention: <c>portcullis audit prune --before DATE</c> removes the oldest sealed events (and their seals) up to
/// the first event at or after DATE, and records what it did as an <c>audit_pruned</c> event — count, time range,
/// sequence range and the hash of the last removed seal. That event is itself sealed into the chain, and it is
/// the anchor <see cref="AuditChain.VerifyAsync"/> checks the first remaining seal against, so removing old
/// events any other way still shows as tampering. Only a prefix of the chain is ever removed.
/// On PostgreSQL the application role may not delete audit rows (L07): prune runs with the owner's connection.
/// </summary>
public static class AuditRetention
{
    public sealed record Result(long Count, long FirstSequence, long LastSequence, DateTimeOffset? Oldest, DateTimeOffset? Newest);

    public sealed record PrunedDetails(long Count, DateTimeOffset Before, long FirstSequence, long LastSequence,
        DateTimeOffset? Oldest, DateTimeOffset? Newest, string AnchorHash);

    public static async Task<Result> PruneAsync(PortcullisDb db, AuditLog audit, DateTimeOffset before, DateTimeOffset now, CancellationToken ct)
    {
        // Everything old enough is sealed first, so what is removed was verified-able up to the moment it went.
        await AuditSealer.SealAsync(db, now, ct);
        // Under the chain's lock: no sealer extends the chain while its head is removed and re-anchored.
        await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.AuditChain, ct);
        var firstKept = await db.AuditSeals.AsNoTracking()
            .Where(s => db.AuditEvents.Any(e => e.Id == s.EventId && e.Timestamp >= before))
            .OrderBy(s => s.Sequence).Select(s => (long?)s.Sequence).FirstOrDefaultAsync(ct);
        var last = firstKept is { } kept
            ? kept - 1
            : await db.AuditSeals.MaxAsync(s => (long?)s.Sequence, ct) ?? 0;
        var first = await db.AuditSeals.MinAsync(s => (long?)s.Sequence, ct) ?? 1;
        if (last < first)
        {
            return new Result(0, 0, 0, null, null);
        }

        var anchor = await db.AuditSeals.AsNoTracking().SingleAsync(s => s.Sequence == last, ct);
        var range = db.AuditEvents.Where(e => db.AuditSeals.Any(s => s.EventId == e.Id && s.Sequence <= last));
        var oldest = await range.MinAsync(e => (DateTimeOffset?)e.Timestamp, ct);
        var newest = await range.MaxAsync(e => (DateTimeOffset?)e.Timestamp, ct);
        var count = await range.ExecuteDeleteAsync(ct);
        await db.AuditSeals.Where(s => s.Sequence <= last).ExecuteDeleteAsync(ct);
        audit.Record(AuditEvents.AuditPruned, AuditOutcomes.Success, $"audit:{first}..{last}",
            new PrunedDetails(count, before, first, last, oldest, newest, anchor.Hash));
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return new Result(count, first, last, oldest, newest);
    }

    /// <summary>The prune records, newest first: what a chain that starts after sequence 1 must be anchored by.</summary>
    internal static async Task<List<PrunedDetails>> PrunesAsync(PortcullisDb db, CancellationToken ct)
    {
        var rows = await db.AuditEvents.AsNoTracking().Where(e => e.EventId == AuditEvents.AuditPruned.Id && e.Details != null)
            .OrderByDescending(e => e.Id).Select(e => e.Details!).ToListAsync(ct);
        var result = new List<PrunedDetails>();
        foreach (var details in rows)
        {
            try
            {
                if (JsonSerializer.Deserialize<PrunedDetails>(details, Json) is { } parsed)
                {
                    result.Add(parsed);
                }
            }
            catch (JsonException)
            {
                // A record that does not parse anchors nothing; verify then reports the unanchored start.
            }
        }

        return result;
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}
