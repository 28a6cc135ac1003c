namespace Portcullis.Audit;

/// <summary>
/// The audit trail's services: the writer, the hash-chain sealer and the two aggregators of repeated refusals.
/// <para>
/// Owns the event catalogue (<see cref="AuditEvents"/>), writing events in the caller's transaction
/// (<see cref="AuditLog"/>), sealing them into a hash chain and verifying it, retention (prune), aggregation of
/// repeated denials and rate-limit refusals, and the query and export (mounted by Admin, used by the CLI).
/// </para>
/// <para>
/// Uses Storage (the DbContext, store locks), Access (the permission name the query requires) and Hosting
/// (redaction of personal data, JSON bodies, metrics, log event ids). Other features write to it; it calls none.
/// </para>
/// </summary>
public static class AuditServices
{
    public static IServiceCollection AddPortcullisAudit(this IServiceCollection services)
    {
        services.AddScoped<AuditLog>();
        services.AddOptionsWithValidateOnStart<AuditOptions>().BindConfiguration(AuditOptions.Section);
        services.AddSingleton<AuditSealer>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditSealer>());
        services.AddSingleton<RejectionAggregator>();
        services.AddHostedService(sp => sp.GetRequiredService<RejectionAggregator>());
        services.AddSingleton<DenialAggregator>();
        services.AddHostedService(sp => sp.GetRequiredService<DenialAggregator>());
        return services;
    }
}
