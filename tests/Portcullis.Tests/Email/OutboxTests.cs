using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Accounts;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Email;

/// <summary>
/// The durable outbox: with the SMTP server down, reset requests still succeed at once; their messages wait in the
/// database, survive a restart, and arrive when the server is back; a message that cannot be delivered is marked
/// failed after the configured attempts, with a log line, and keeps no body.
/// </summary>
public sealed class OutboxTests
{
    [Fact]
    public async Task With_SMTP_down_reset_requests_succeed_and_the_mail_arrives_after_a_restart_once_the_server_is_up()
    {
        await using var smtp = SmtpSink.Create(); // not listening yet: connections are refused
        var first = await PortcullisServer.StartAsync(smtp.Settings);
        var dataDirectory = first.DataDirectory;
        var usernames = new List<string>();
        try
        {
            using var http = first.CreateClient();
            for (var i = 0; i < 3; i++)
            {
                var (_, username, _) = await http.NewUserAsync("down");
                usernames.Add(username);
                using var response = await http.PostAsJsonAsync("api/accounts/password-reset", new { email = $"{username}@example.com" });
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }

            // The sender tried, failed and scheduled a retry; nothing was lost (each account's verification message too).
            await WaitUntilAsync(first, db => db.OutboxMessages.CountAsync(m => m.Attempts >= 1 && m.SentAt == null && m.LastError != null), 6);
        }
        finally
        {
            await first.StopKeepingDataAsync();
        }

        smtp.Start();
        await using var second = await PortcullisServer.StartAsync(smtp.Settings, dataDirectory: dataDirectory);
        var received = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var mail = await smtp.NextAsync(TimeSpan.FromSeconds(30));
            if (mail.Subject == "Choose a new password")
            {
                received.Add(mail.To.Mailboxes.Single().Address);
                var (_, token) = SmtpSink.LinkIn(mail, PasswordResets.ResetPath);
                second.Canary.Record(token);
            }
        }

        Assert.Equal(usernames.Select(u => $"{u}@example.com").Order(), received.Order());
        await WaitUntilAsync(second, db => db.OutboxMessages.CountAsync(m => m.SentAt != null && m.ProtectedBody == null), 6);
        Assert.False(await smtp.AnyWithinAsync(TimeSpan.FromSeconds(1)), "A message was delivered twice.");
    }

    [Fact]
    public async Task A_message_that_cannot_be_delivered_is_marked_failed_after_the_configured_attempts_and_logged()
    {
        await using var smtp = SmtpSink.Create(); // never started
        var settings = smtp.Settings;
        settings["Email:Outbox:MaxAttempts"] = "2";
        settings["Email:Outbox:RetryDelay"] = "00:00:00.100";
        await using var server = await PortcullisServer.StartAsync(settings);
        var mark = server.Logs.Mark();
        using var http = server.CreateClient();
        var (_, username, _) = await http.NewUserAsync("failed");

        using (var response = await http.PostAsJsonAsync("api/accounts/password-reset", new { email = $"{username}@example.com" }))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        // The account's verification message and the reset message.
        await WaitUntilAsync(server, db => db.OutboxMessages.CountAsync(m => m.FailedAt != null && m.Attempts == 2 && m.ProtectedBody == null), 2);
        var gaveUp = server.Logs.EntriesSince(mark).Where(e => e.EventId == 8003).ToList();
        Assert.Equal(2, gaveUp.Count);
        Assert.All(gaveUp, e => Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, e.Level));
        Assert.All(gaveUp, e => Assert.Contains("after 2 attempts", e.Message, StringComparison.Ordinal));
    }

    private static async Task WaitUntilAsync(PortcullisServer server, Func<PortcullisDb, Task<int>> count, int expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        int seen;
        do
        {
            await using var scope = server.Services.CreateAsyncScope();
            seen = await count(scope.ServiceProvider.GetRequiredService<PortcullisDb>());
            if (seen == expected)
            {
                return;
            }

            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);

        Assert.Fail($"Expected {expected} outbox rows in that state, saw {seen}.");
    }
}
