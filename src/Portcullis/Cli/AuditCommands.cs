using System.CommandLine;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Portcullis.Audit;
using Portcullis.Storage;

namespace Portcullis.Cli;

/// <summary>
/// <c>audit tail|export|verify|prune</c>. Nothing here changes an event; <c>prune</c> (retention) removes the
/// oldest ones and leaves an <c>audit_pruned</c> event that anchors the rest of the chain.
/// </summary>
public static class AuditCommands
{
    private static readonly Option<int> Limit = new("--limit") { Description = "How many events (1-500).", DefaultValueFactory = _ => 20 };
    private static readonly Option<DateTimeOffset?> From = new("--from") { Description = "Only events at or after this time (ISO 8601)." };
    private static readonly Option<DateTimeOffset?> To = new("--to") { Description = "Only events before this time (ISO 8601)." };
    private static readonly Option<DateTimeOffset> Before = new("--before")
    {
        Description = "Remove the events older than this time (ISO 8601), oldest first, up to the first newer one.",
        Required = true,
    };

    public static Command Create(CliIo io)
    {
        var audit = new Command("audit", "The audit trail.");

        var tail = new Command("tail", "Print the newest events.");
        tail.Options.Add(Limit);
        tail.Options.Add(CliApp.Json);
        tail.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var limit = parse.GetValue(Limit);
            if (limit is < 1 or > AuditQuery.MaxPageSize)
            {
                await io.Error.WriteLineAsync($"error: --limit is 1 to {AuditQuery.MaxPageSize}.");
                return CliApp.Invalid;
            }

            var page = await AuditQuery.ListAsync(services.GetRequiredService<PortcullisDb>(), null, null, null, null, null, null, limit, ct);
            var items = ((Microsoft.AspNetCore.Http.HttpResults.Ok<AuditQuery.Page>)page.Result).Value!.Items;
            await AccountCommands.PrintAsync(io, parse, items, e => $"{e.Timestamp:u} {e.EventId} {e.Name,-28} {e.Outcome,-8} {e.Actor} {e.Target} {e.ClientIp}");
            return CliApp.Ok;
        }));

        var export = new Command("export", "Write events as NDJSON (oldest first) to standard output.");
        export.Options.Add(From);
        export.Options.Add(To);
        export.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var filter = new AuditQuery.Filter(null, null, null, parse.GetValue(From), parse.GetValue(To));
            await foreach (var line in AuditQuery.ExportLinesAsync(services.GetRequiredService<PortcullisDb>(), filter, ct))
            {
                await io.Out.WriteAsync(Encoding.UTF8.GetString(line));
            }

            return CliApp.Ok;
        }));

        var verify = new Command("verify", "Check the hash chain: exit 0 when intact, 1 with the first break when not.");
        verify.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var db = services.GetRequiredService<PortcullisDb>();
            var time = services.GetRequiredService<TimeProvider>();
            // Seal what is due first, so a verify right after activity covers it.
            await AuditSealer.SealAsync(db, time.GetUtcNow(), ct);
            var total = await db.AuditSeals.LongCountAsync(ct);
            var report = await CliProgress.RunAsync(io, "audit verify", "events", total,
                progress => AuditChain.VerifyAsync(db, time.GetUtcNow() - TimeSpan.FromMinutes(1), ct, progress));
            if (!report.Intact)
            {
                await io.Out.WriteLineAsync($"TAMPERED: {report.Problem} ({report.Checked} events verified before it)");
                return CliApp.Failed;
            }

            await io.Out.WriteLineAsync($"OK: {report.Checked} events, chain intact.");
            return CliApp.Ok;
        }));

        var prune = new Command("prune", "Retention: remove events older than --before; leaves an audit_pruned event. On PostgreSQL run it with the owner's connection string.");
        prune.Options.Add(Before);
        prune.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var time = services.GetRequiredService<TimeProvider>();
            var before = parse.GetValue(Before);
            if (before > time.GetUtcNow())
            {
                await io.Error.WriteLineAsync("error: --before is in the future; prune removes only past events.");
                return CliApp.Invalid;
            }

            AuditRetention.Result result;
            try
            {
                result = await AuditRetention.PruneAsync(
                    services.GetRequiredService<PortcullisDb>(), services.GetRequiredService<AuditLog>(), before, time.GetUtcNow(), ct);
            }
            catch (Npgsql.PostgresException ex) when (ex.SqlState == Npgsql.PostgresErrorCodes.InsufficientPrivilege)
            {
                // L07: the application role may only insert and read audit rows. Retention is an owner's job.
                await io.Error.WriteLineAsync("error: this database role may not remove audit events (by design, L07). Run prune with the owner's connection string, e.g. Portcullis__Storage__ConnectionString='…Username=portcullis_owner…' portcullis audit prune --before …");
                return CliApp.Failed;
            }

            await io.Out.WriteLineAsync(result.Count == 0
                ? "Nothing to prune."
                : $"Pruned {result.Count} events (sequence {result.FirstSequence}..{result.LastSequence}, {result.Oldest:u} to {result.Newest:u}).");
            return CliApp.Ok;
        }));

        audit.Subcommands.Add(tail);
        audit.Subcommands.Add(export);
        audit.Subcommands.Add(verify);
        audit.Subcommands.Add(prune);
        return audit;
    }
}
