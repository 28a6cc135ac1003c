using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Portcullis.Storage;

namespace Portcullis.Email;

/// <summary>
/// Stages a message in the caller's DbContext: it commits (or not) with the change that causes it, and
/// <see cref="OutboxSender"/> delivers it afterwards, so a slow or down SMTP server never blocks or fails a request.
/// </summary>
public sealed class Outbox(PortcullisDb db, IOptions<EmailOptions> options, IDataProtectionProvider protection, TimeProvider time, OutboxSignal signal)
{
    internal const string ProtectorPurpose = "Portcullis.Email.Outbox.v1";

    public bool Available => options.Value.Configured;

    /// <summary>Adds the message to the DbContext; the caller's SaveChanges writes it.</summary>
    public void Stage(string to, string subject, string body)
    {
        if (!Available)
        {
            throw new InvalidOperationException("Outgoing mail is not configured (Email:Smtp:Host).");
        }

        var now = time.GetUtcNow();
        db.OutboxMessages.Add(new OutboxMessage
        {
            To = to,
            Subject = subject,
            ProtectedBody = protection.CreateProtector(ProtectorPurpose).Protect(body),
            CreatedAt = now,
            NextAttemptAt = now,
        });
    }

    /// <summary>Tells the sender to look now (after the caller committed), rather than at its next poll.</summary>
    public void Wake() => signal.Wake();
}

/// <summary>Wakes the sender when a message is committed.</summary>
public sealed class OutboxSignal : IDisposable
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled: one wake-up covers every message committed before it.
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);

    public void Dispose() => _wake.Dispose();
}

/// <summary>The outbox's counters, on the product's meter.</summary>
public sealed class EmailMetrics : IDisposable
{
    private readonly Meter _meter = new(Hosting.PortcullisMetrics.MeterName);

    public EmailMetrics()
    {
        Messages = _meter.CreateCounter<long>("portcullis.email.messages", description: "Outbox delivery attempts by outcome (sent, retry, failed).");
    }

    public Counter<long> Messages { get; }

    public void Dispose() => _meter.Dispose();
}
