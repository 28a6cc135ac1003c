using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portcullis.Storage;

namespace Portcullis.Email;

/// <summary>
/// Delivers the outbox: each due message is claimed (its next attempt moved past the send timeout, so another
/// instance skips it), sent, and marked sent; a failure waits <c>RetryDelay</c>, doubling up to an hour, and after
/// <c>MaxAttempts</c> the message is marked failed with a log line and a metric. Sent and failed messages keep no body.
/// </summary>
public sealed partial class OutboxSender(
    IServiceScopeFactory scopes, IOptions<EmailOptions> options, OutboxSignal signal, IDataProtectionProvider protection,
    EmailMetrics metrics, TimeProvider time, ILogger<OutboxSender> logger) : BackgroundService
{
    private const int Batch = 20;
    private static readonly TimeSpan MaxDelay = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Configured)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await SendDueAsync(stoppingToken) == Batch)
                {
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The database may be down for a moment; the messages wait in it.
                LogOutboxError(logger, ex);
            }

            try
            {
                await signal.WaitAsync(options.Value.Outbox.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Sends the due messages (at most one batch); returns how many were due.</summary>
    internal async Task<int> SendDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var sender = scope.ServiceProvider.GetRequiredService<SmtpSender>();
        var now = time.GetUtcNow();
        var due = await db.OutboxMessages.AsNoTracking()
            .Where(m => m.SentAt == null && m.FailedAt == null && m.NextAttemptAt <= now)
            .OrderBy(m => m.NextAttemptAt).ThenBy(m => m.Id)
            .Take(Batch).ToListAsync(ct);
        var protector = protection.CreateProtector(Outbox.ProtectorPurpose);
        var outbox = options.Value.Outbox;
        foreach (var message in due)
        {
            // Claimed only if no other instance moved it first.
            var lease = now + options.Value.Smtp.Timeout * 3;
            var seen = message.NextAttemptAt;
            if (await db.OutboxMessages.Where(m => m.Id == message.Id && m.NextAttemptAt == seen && m.SentAt == null)
                    .ExecuteUpdateAsync(s => s.SetProperty(m => m.NextAttemptAt, lease), ct) != 1)
            {
                continue;
            }

            var attempts = message.Attempts + 1;
            try
            {
                var body = protector.Unprotect(message.ProtectedBody ?? throw new InvalidOperationException("The message has no body."));
                var reply = await sender.SendAsync(message.To, message.Subject, body, ct);
                await db.OutboxMessages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(s => s
                    .SetProperty(m => m.SentAt, time.GetUtcNow())
                    .SetProperty(m => m.Attempts, attempts)
                    .SetProperty(m => m.ProtectedBody, (string?)null)
                    .SetProperty(m => m.LastError, (string?)null), ct);
                metrics.Messages.Add(1, new KeyValuePair<string, object?>("outcome", "sent"));
                LogSent(logger, message.Id, attempts, reply.Length <= 500 ? reply : reply[..500]);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var error = Cap(ex.GetType().Name + ": " + ex.Message);
                if (attempts >= outbox.MaxAttempts)
                {
                    await db.OutboxMessages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(s => s
                        .SetProperty(m => m.FailedAt, time.GetUtcNow())
                        .SetProperty(m => m.Attempts, attempts)
                        .SetProperty(m => m.ProtectedBody, (string?)null)
                        .SetProperty(m => m.LastError, error), ct);
                    metrics.Messages.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
                    LogGaveUp(logger, message.Id, attempts, error);
                }
                else
                {
                    var wait = TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, outbox.RetryDelay.Ticks * (1L << Math.Min(attempts - 1, 20))));
                    await db.OutboxMessages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(s => s
                        .SetProperty(m => m.NextAttemptAt, time.GetUtcNow() + wait)
                        .SetProperty(m => m.Attempts, attempts)
                        .SetProperty(m => m.LastError, error), ct);
                    metrics.Messages.Add(1, new KeyValuePair<string, object?>("outcome", "retry"));
                    LogRetry(logger, message.Id, attempts, wait, error);
                }
            }
        }

        return due.Count;
    }

    private static string Cap(string text) => text.Length <= 500 ? text : text[..500];

    [LoggerMessage(EventId = Hosting.EventIds.Email.Sent, Level = LogLevel.Information, Message = "Outbox message {MessageId} sent after {Attempts} attempt(s); the server answered: {Reply}")]
    private static partial void LogSent(ILogger logger, long messageId, int attempts, string reply);

    [LoggerMessage(EventId = Hosting.EventIds.Email.Retry, Level = LogLevel.Warning, Message = "Outbox message {MessageId} not sent (attempt {Attempts}); next try in {Wait}: {Error}")]
    private static partial void LogRetry(ILogger logger, long messageId, int attempts, TimeSpan wait, string error);

    [LoggerMessage(EventId = Hosting.EventIds.Email.GaveUp, Level = LogLevel.Error, Message = "Outbox message {MessageId} marked failed after {Attempts} attempts: {Error}")]
    private static partial void LogGaveUp(ILogger logger, long messageId, int attempts, string error);

    [LoggerMessage(EventId = Hosting.EventIds.Email.OutboxError, Level = LogLevel.Error, Message = "The outbox could not be read or updated; it is retried at the next poll.")]
    private static partial void LogOutboxError(ILogger logger, Exception exception);
}
