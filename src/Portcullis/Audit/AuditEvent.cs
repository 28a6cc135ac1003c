namespace Portcullis.Audit;

/// <summary>
/// One audit record. Append-only: nothing in Portcullis updates or deletes a row except the explicit retention
/// command. <see cref="Sequence"/>, <see cref="PreviousHash"/> and <see cref="Hash"/> are filled by the sealer,
/// which chains events in sequence order (see docs/adr/0003-audit-hash-chain.md).
/// </summary>
public sealed class AuditEvent
{
    public long Id { get; set; }

    public DateTimeOffset Timestamp { get; set; }

    public int EventId { get; set; }

    public required string Name { get; set; }

    public required string Outcome { get; set; }

    /// <summary>"user:{id}", "client:{id}", "operator" (CLI) or "anonymous".</summary>
    public required string Actor { get; set; }

    public string? ClientIp { get; set; }

    /// <summary>What was acted on: "user:{id}", "role:{name}", "client:{id}", "session:{id}", "key:{kid}", or a masked name.</summary>
    public string? Target { get; set; }

    public string? TraceId { get; set; }

    /// <summary>Safe details as a small JSON object; never a secret.</summary>
    public string? Details { get; set; }

    public long? Sequence { get; set; }

    public string? PreviousHash { get; set; }

    public string? Hash { get; set; }
}

/// <summary>
/// The hash chain over audit events, in its own insert-only table so the application never needs UPDATE or
/// DELETE on audit data: seal N holds event E's hash, chained to seal N-1.
/// </summary>
public sealed class AuditSeal
{
    public long Sequence { get; set; }

    public long EventId { get; set; }

    public required string PreviousHash { get; set; }

    public required string Hash { get; set; }
}
