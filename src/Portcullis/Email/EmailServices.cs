using Microsoft.Extensions.Options;

namespace Portcullis.Email;

/// <summary>
/// Outgoing mail. Owns the SMTP settings (<see cref="EmailOptions"/>), the outbox (<see cref="Outbox"/>: staged in
/// the caller's transaction, delivered by <see cref="OutboxSender"/>), the direct send of <c>portcullis email test</c>
/// and the links mail carries (<see cref="MailLinks"/>). Uses Storage (the outbox table), Data Protection (the body at
/// rest) and Tokens' issuer (the public URL of links). Knows no account: Accounts writes the messages.
/// </summary>
public static class EmailServices
{
    public static IServiceCollection AddPortcullisEmail(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<EmailOptions>().BindConfiguration(EmailOptions.Section);
        services.AddSingleton<IValidateOptions<EmailOptions>, EmailOptionsValidator>();
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<EmailMetrics>();
        services.AddScoped<Outbox>();
        services.AddScoped<SmtpSender>();
        services.AddSingleton<MailLinks>();
        services.AddHostedService<OutboxSender>();
        return services;
    }
}

/// <summary>
/// Absolute links for mail, from the configured public URL (the issuer), never from the request's Host header:
/// a forged Host would otherwise send a victim's reset link to the attacker's site.
/// </summary>
public sealed class MailLinks(Tokens.IssuerResolver issuer)
{
    public string For(string path, string token) =>
        issuer.Issuer.AbsoluteUri.TrimEnd('/') + "/" + path.TrimStart('/') + "?token=" + Uri.EscapeDataString(token);
}
