using Portcullis.Hosting;

namespace Portcullis.Gateway;

internal static class GatewayAudit
{
    /// <summary>Writes one event; a failing audit store never changes the answer (it is counted instead).</summary>
    public static async Task WriteAsync(HttpContext context, Audit.AuditEvents.Definition definition, string? route, object details)
    {
        try
        {
            await context.RequestServices.GetRequiredService<Audit.AuditLog>().WriteAsync(
                definition, Audit.AuditOutcomes.Denied, route is null ? null : $"route:{route}", details, context.RequestAborted);
        }
#pragma warning disable CA1031 // The audit store failing must not turn a 4xx/5xx decision into something else.
        catch (Exception)
#pragma warning restore CA1031
        {
            context.RequestServices.GetRequiredService<PortcullisMetrics>().AuditWriteFailures.Add(1);
        }
    }
}
