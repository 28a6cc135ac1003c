using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Audit;

/// <summary>
/// <c>GET /api/admin/audit</c> (newest first, cursor-paged) and <c>GET /api/admin/audit/export</c> (NDJSON,
/// streamed), both with permission <c>audit:read</c>. There is no route that changes or deletes an event.
/// </summary>
public static class AuditQuery
{
    public const int MaxPageSize = 500;

    public sealed record Filter(string? Actor, string? Type, string? Outcome, DateTimeOffset? From, DateTimeOffset? To);

    public sealed record Item(long Id, DateTimeOffset Timestamp, int EventId, string Name, string Outcome, string Actor,
        string? ClientIp, string? Target, string? TraceId, JsonElement? Details);

    public sealed record Page(IReadOnlyList<Item> Items, string? Next);

    /// <summary>Maps the query and the export into <paramref name="audit"/>, the admin API's <c>/audit</c> group.</summary>
    public static RouteGroupBuilder MapAuditQuery(this RouteGroupBuilder audit)
    {
        audit.WithTags("Audit");
        audit.MapGet("/", ListAsync).RequirePermission(Permissions.AuditRead);
        audit.MapGet("/export", Export).RequirePermission(Permissions.AuditRead);
        return audit;
    }

    public static async Task<Results<Ok<Page>, ValidationProblem>> ListAsync(
        PortcullisDb db, string? actor, string? type, string? outcome, DateTimeOffset? from, DateTimeOffset? to, string? cursor, int? limit, CancellationToken ct)
    {
        var size = limit ?? 50;
        if (size is < 1 or > MaxPageSize)
        {
            return JsonBody.Invalid("limit", $"The page size is 1 to {MaxPageSize}.");
        }

        // With a time range the order is (Timestamp, Id), newest first: the Timestamp index then serves the range and
        // the order together, so the first page of a month-wide range is read from the index, not a sort of every event
        // in the range (BENCHMARKS.md, scale). Otherwise the order is Id (insertion), which the actor and type indexes
        // serve. The cursor is the last item's Id, with its timestamp's UTC ticks first when ordered by time.
        var filter = new Filter(actor, type, outcome, from, to);
        var byTime = from is not null || to is not null;
        var q = Query(db, filter);
        if (cursor is not null)
        {
            if (!TryParseCursor(cursor, byTime, out var ticks, out var id))
            {
                return JsonBody.Invalid("cursor", "The cursor is not valid.");
            }

            if (byTime)
            {
                var at = new DateTimeOffset(ticks, TimeSpan.Zero);
                q = q.Where(e => e.Timestamp < at || (e.Timestamp == at && e.Id < id));
            }
            else
            {
                q = q.Where(e => e.Id < id);
            }
        }

        q = byTime ? q.OrderByDescending(e => e.Timestamp).ThenByDescending(e => e.Id) : q.OrderByDescending(e => e.Id);
        var rows = await q.Take(size + 1).ToListAsync(ct);
        var items = rows.Take(size).Select(ToItem).ToList();
        string? next = null;
        if (rows.Count > size)
        {
            var last = items[^1];
            next = byTime
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{last.Timestamp.UtcTicks}.{last.Id}")
                : last.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return TypedResults.Ok(new Page(items, next));
    }

    private static bool TryParseCursor(string cursor, bool byTime, out long ticks, out long id)
    {
        ticks = 0;
        id = 0;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (!byTime)
        {
            return long.TryParse(cursor, System.Globalization.NumberStyles.None, inv, out id) && id >= 1;
        }

        var dot = cursor.IndexOf('.', StringComparison.Ordinal);
        return dot > 0
            && long.TryParse(cursor.AsSpan(0, dot), System.Globalization.NumberStyles.None, inv, out ticks)
            && ticks >= DateTimeOffset.MinValue.UtcTicks && ticks <= DateTimeOffset.MaxValue.UtcTicks
            && long.TryParse(cursor.AsSpan(dot + 1), System.Globalization.NumberStyles.None, inv, out id) && id >= 1;
    }

    public static IResult Export(PortcullisDb db, string? actor, string? type, string? outcome, DateTimeOffset? from, DateTimeOffset? to, CancellationToken ct) =>
        Results.Stream(async stream =>
        {
            await foreach (var line in ExportLinesAsync(db, new Filter(actor, type, outcome, from, to), ct))
            {
                await stream.WriteAsync(line, ct);
            }
        }, "application/x-ndjson");

    /// <summary>Oldest first, one JSON object per line, read in batches so memory stays flat.</summary>
    public static async IAsyncEnumerable<byte[]> ExportLinesAsync(PortcullisDb db, Filter filter, [EnumeratorCancellation] CancellationToken ct)
    {
        long after = 0;
        while (true)
        {
            var batch = await Query(db, filter).Where(e => e.Id > after).OrderBy(e => e.Id).Take(1000).ToListAsync(ct);
            foreach (var e in batch)
            {
                var bytes = JsonSerializer.SerializeToUtf8Bytes(ToItem(e), JsonOptions);
                yield return [.. bytes, (byte)'\n'];
            }

            if (batch.Count < 1000)
            {
                yield break;
            }

            after = batch[^1].Id;
        }
    }

    private static IQueryable<AuditEvent> Query(PortcullisDb db, Filter f)
    {
        var q = db.AuditEvents.AsNoTracking();
        if (!string.IsNullOrEmpty(f.Actor))
        {
            q = q.Where(e => e.Actor == f.Actor);
        }

        if (!string.IsNullOrEmpty(f.Type))
        {
            q = int.TryParse(f.Type, System.Globalization.CultureInfo.InvariantCulture, out var id) ? q.Where(e => e.EventId == id) : q.Where(e => e.Name == f.Type);
        }

        if (!string.IsNullOrEmpty(f.Outcome))
        {
            q = q.Where(e => e.Outcome == f.Outcome);
        }

        if (f.From is { } from)
        {
            q = q.Where(e => e.Timestamp >= from);
        }

        if (f.To is { } to)
        {
            q = q.Where(e => e.Timestamp < to);
        }

        return q;
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static Item ToItem(AuditEvent e) => new(e.Id, e.Timestamp, e.EventId, e.Name, e.Outcome, e.Actor, e.ClientIp, e.Target, e.TraceId,
        e.Details is null ? null : JsonDocument.Parse(e.Details).RootElement.Clone());
}
