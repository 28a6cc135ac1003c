using System.Net;
using Microsoft.Extensions.Options;
using MimeKit;

namespace Portcullis.Email;

/// <summary>How the SMTP connection is secured.</summary>
public enum SmtpSecurity
{
    /// <summary>Plain connection upgraded with STARTTLS; refused if the server does not offer it.</summary>
    StartTls,

    /// <summary>TLS from the first byte (implicit TLS, usually port 465).</summary>
    Tls,

    /// <summary>No TLS: only to a server on loopback (a local relay).</summary>
    None,
}

/// <summary>Outgoing mail. Section <c>Email</c>. Unset <c>Email:Smtp:Host</c> means no mail: reset and verification are unavailable.</summary>
public sealed class EmailOptions
{
    public const string Section = "Email";

    public SmtpOptions Smtp { get; set; } = new();

    public OutboxOptions Outbox { get; set; } = new();

    public bool Configured => !string.IsNullOrWhiteSpace(Smtp.Host);
}

public sealed class SmtpOptions
{
    /// <summary>SMTP server name or address. Default none (mail off).</summary>
    public string? Host { get; set; }

    /// <summary>Port. Default 587 for StartTls, 465 for Tls, 25 for None.</summary>
    public int? Port { get; set; }

    /// <summary>StartTls (default), Tls or None (loopback only).</summary>
    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    /// <summary>Login name; no login when unset.</summary>
    public string? Username { get; set; }

    /// <summary>A file whose first line is the SMTP password (preferred over the environment variable).</summary>
    public string? PasswordFile { get; set; }

    /// <summary>The SMTP password from <c>Portcullis__Email__Smtp__Password</c>. Never logged.</summary>
    public string? Password { get; set; }

    /// <summary>The sender, e.g. <c>Portcullis &lt;no-reply@example.com&gt;</c>. Required with Host.</summary>
    public string? From { get; set; }

    /// <summary>Connect, send and reply timeout. Default 00:00:30.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    public int EffectivePort => Port ?? Security switch { SmtpSecurity.Tls => 465, SmtpSecurity.None => 25, _ => 587 };

    /// <summary>The password: the file's first line, else the setting; null without a username.</summary>
    public string? ResolvePassword() =>
        !string.IsNullOrEmpty(PasswordFile) ? File.ReadLines(PasswordFile).FirstOrDefault()?.TrimEnd('\r') : Password;

    internal static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}

/// <summary>The outbox's delivery retries.</summary>
public sealed class OutboxOptions
{
    /// <summary>Delivery attempts before a message is marked failed. Default 8.</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary>Wait after the first failure; doubled after each one, up to one hour. Default 00:00:30.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the sender looks for due messages besides being woken by a new one. Default 00:00:05.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>All failures at once, each saying what to set.</summary>
public sealed class EmailOptionsValidator : IValidateOptions<EmailOptions>
{
    public ValidateOptionsResult Validate(string? name, EmailOptions options)
    {
        var failures = new List<string>();
        var smtp = options.Smtp;
        if (options.Outbox.MaxAttempts is < 1 or > 100)
        {
            failures.Add("Email:Outbox:MaxAttempts must be between 1 and 100.");
        }

        if (options.Outbox.RetryDelay <= TimeSpan.Zero || options.Outbox.PollInterval <= TimeSpan.Zero)
        {
            failures.Add("Email:Outbox:RetryDelay and Email:Outbox:PollInterval must be positive.");
        }

        if (!options.Configured)
        {
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        if (smtp.Port is { } port && port is < 1 or > 65535)
        {
            failures.Add("Email:Smtp:Port must be between 1 and 65535.");
        }

        // Credentials and reset links in clear text over a network are readable by anyone on the path.
        if (smtp.Security == SmtpSecurity.None && !SmtpOptions.IsLoopback(smtp.Host!))
        {
            failures.Add($"Email:Smtp:Security=None is allowed only for a server on loopback, not {smtp.Host}: set Email:Smtp:Security to StartTls or Tls.");
        }

        if (string.IsNullOrWhiteSpace(smtp.From) || !MailboxAddress.TryParse(smtp.From, out _))
        {
            failures.Add("Email:Smtp:From must be a sender address such as 'Portcullis <no-reply@example.com>'.");
        }

        if (!string.IsNullOrEmpty(smtp.PasswordFile) && !File.Exists(smtp.PasswordFile))
        {
            failures.Add($"Email:Smtp:PasswordFile names a file that does not exist: {smtp.PasswordFile}.");
        }

        if (!string.IsNullOrEmpty(smtp.Username) && string.IsNullOrEmpty(smtp.PasswordFile) && string.IsNullOrEmpty(smtp.Password))
        {
            failures.Add("Email:Smtp:Username is set without a password: set Email:Smtp:PasswordFile or Portcullis__Email__Smtp__Password.");
        }

        if (smtp.Timeout <= TimeSpan.Zero)
        {
            failures.Add("Email:Smtp:Timeout must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
