namespace Portcullis.Audit;

/// <summary>The audit trail's services: the writer, the hash-chain sealer and the two aggregators of repeated refusals.</summary>
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
