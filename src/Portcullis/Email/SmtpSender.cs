using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Portcullis.Email;

/// <summary>One SMTP delivery with MailKit: connect, authenticate when configured, send, and the server's answer.</summary>
public sealed class SmtpSender(IOptions<EmailOptions> options)
{
    /// <summary>Sends now and returns the server's reply to the message (e.g. <c>250 2.0.0 Ok: queued</c>).</summary>
    /// <exception cref="InvalidOperationException">Mail is not configured.</exception>
    public async Task<string> SendAsync(string to, string subject, string body, CancellationToken ct)
    {
        var smtp = options.Value.Smtp;
        if (!options.Value.Configured)
        {
            throw new InvalidOperationException("Outgoing mail is not configured (Email:Smtp:Host).");
        }

        using var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(smtp.From!));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.Body = new TextPart("plain") { Text = body };

        using var client = new SmtpClient { Timeout = (int)smtp.Timeout.TotalMilliseconds };
        var security = smtp.Security switch
        {
            SmtpSecurity.Tls => SecureSocketOptions.SslOnConnect,
            SmtpSecurity.None => SecureSocketOptions.None,
            _ => SecureSocketOptions.StartTls, // never StartTlsWhenAvailable: a stripped STARTTLS must fail, not downgrade
        };
        await client.ConnectAsync(smtp.Host!, smtp.EffectivePort, security, ct);
        if (!string.IsNullOrEmpty(smtp.Username))
        {
            await client.AuthenticateAsync(smtp.Username, smtp.ResolvePassword() ?? "", ct);
        }

        var reply = await client.SendAsync(message, ct);
        await client.DisconnectAsync(quit: true, ct);
        return reply;
    }
}
