using System.Diagnostics;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.Extensions.Compliance.Redaction;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Audit;

/// <summary>
/// Writes audit events explicitly from the handlers that make the change, into the same DbContext, so the event
/// commits (or not) with the change it describes. Details are small JSON objects of safe values: ids, names,
/// counts — never a password, token, secret or raw header.
/// </summary>
public sealed class AuditLog(PortcullisDb db, IHttpContextAccessor http, TimeProvider time, IRedactorProvider redactors)
{
    private const int MaxDetailsLength = 1024;
    private const int MaxFieldLength = 200;

    /// <summary>Stages an event; it is saved by the caller's next SaveChanges (same transaction).</summary>
    public void Record(AuditEvents.Definition definition, string outcome, string? target = null, object? details = null, string? actor = null)
    {
        var context = http.HttpContext;
        db.AuditEvents.Add(new AuditEvent
        {
            Timestamp = time.GetUtcNow(),
            EventId = definition.Id,
            Name = definition.Name,
            Outcome = outcome,
            Actor = Cap(actor ?? (context is null ? "operator" : ActorOf(context.User)))!,
            ClientIp = context?.Connection.RemoteIpAddress?.ToString(),
            Target = Cap(target),
            TraceId = Activity.Current?.TraceId.ToString() ?? context?.TraceIdentifier,
            Details = details is null ? null : Cap(JsonSerializer.Serialize(details, JsonOptions), MaxDetailsLength),
        });
    }

    /// <summary>Stages and saves an event that accompanies no other change (e.g. a failed login).</summary>
    public async Task WriteAsync(AuditEvents.Definition definition, string outcome, string? target = null, object? details = null, CancellationToken ct = default)
    {
        Record(definition, outcome, target, details);
        await db.SaveChangesAsync(ct);
    }

    public static string ActorOf(ClaimsPrincipal? principal)
    {
        if (principal?.Identity?.IsAuthenticated != true)
        {
            return "anonymous";
        }

        if (principal.UserId() is { } userId)
        {
            return $"user:{userId}";
        }

        return principal.FindFirstValue(Claims.ClientId) is { } client ? $"client:{client}" : "anonymous";
    }

    /// <summary>
    /// A name typed into a username field may be a password typed in the wrong place: it is personal data
    /// (<see cref="PortcullisTaxonomy.Personal"/>) and is stored only as the classified redactor writes it — a keyed
    /// HMAC, so failures for the same name correlate while the text itself is never stored.
    /// </summary>
    public string PersonalName(string? name) =>
        string.IsNullOrEmpty(name) ? "name:(empty)" : "name:" + redactors.GetRedactor(PortcullisTaxonomy.Personal).Redact(name);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static string? Cap(string? value, int max = MaxFieldLength) =>
        value is null || value.Length <= max ? value : value[..max];
}
