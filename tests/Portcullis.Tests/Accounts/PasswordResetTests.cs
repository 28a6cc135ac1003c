using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using MimeKit;
using Portcullis.Accounts;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// Password reset by e-mailed link (A13, A06, AUTH-07, AUTH-09, SES-06) against a real SMTP server on loopback: the
/// mail arrives, its link works once, is refused when replayed, forged, stale or expired, and a reset ends every
/// session; a known and an unknown address get the same answer after the same work.
/// </summary>
public sealed class PasswordResetTests(MailServerFixture fixture) : IClassFixture<MailServerFixture>
{
    private const string NewPassword = "violet otters paddle past midnight 2291";
    private const string ResetSubject = "Choose a new password";
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;
    private SmtpSink Smtp => fixture.Smtp;

    [Fact]
    public async Task A13_the_reset_mail_arrives_its_link_sets_the_new_password_once_and_ends_every_session()
    {
        var (id, username, first) = await _http.NewUserAsync("reset");
        var second = await _http.LoginAsync(username);

        using (var asked = await _http.PostAsJsonAsync("api/accounts/password-reset", new { email = $"{username}@example.com" }))
        {
            Assert.Equal(HttpStatusCode.Accepted, asked.StatusCode);
        }

        var mail = await NextMailToAsync($"{username}@example.com");
        Assert.Equal("Choose a new password", mail.Subject);
        var (link, token) = SmtpSink.LinkIn(mail, PasswordResets.ResetPath);
        Assert.StartsWith(Server.BaseAddress.AbsoluteUri, link.AbsoluteUri, StringComparison.Ordinal);
        Assert.DoesNotContain(username, link.AbsoluteUri, StringComparison.OrdinalIgnoreCase); // no address, no name in the link
        Server.Canary.Record(token);

        // Stored only as its SHA-256, bound to the account; the outbox keeps no body once the message is sent.
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var row = await db.AccountTokens.AsNoTracking().SingleAsync(t => t.UserId == id && t.Purpose == AccountTokenPurposes.Reset);
            Assert.Equal(PasswordResets.Hash(token), row.Hash);
            Assert.NotEqual(token, row.Hash);
            Assert.Equal(AccountTokenPurposes.Reset, row.Purpose);
            Assert.Equal(PasswordResets.Lifetime, row.ExpiresAt - row.CreatedAt);
        }

        using (var done = await ConfirmAsync(token, NewPassword))
        {
            Assert.Equal(HttpStatusCode.NoContent, done.StatusCode);
        }

        // Every session of the account ended: refresh tokens refused, access tokens 401.
        foreach (var session in new[] { first, second })
        {
            using var me = await _http.GetWithTokenAsync("api/me", session.AccessToken);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            using var refresh = await _http.RefreshAsync(session.RefreshToken!);
            await Refusal.AssertInvalidGrantAsync(refresh);
        }

        using (var oldLogin = await _http.PasswordGrantAsync(username, ClientFlows.Password))
        {
            await Refusal.AssertInvalidGrantAsync(oldLogin);
        }

        await _http.LoginAsync(username, NewPassword);

        // Replayed: refused, and the password stays the one just set.
        var hashAfter = (await Server.FindUserAsync(username))!.PasswordHash;
        using (var replay = await ConfirmAsync(token, "yet another long passphrase 5150"))
        {
            await AssertInvalidFieldAsync(replay, "token", token);
        }

        Assert.Equal(hashAfter, (await Server.FindUserAsync(username))!.PasswordHash);
        Assert.Equal(2, await CountAuditAsync(id, "authn_password_reset_request", "authn_password_reset"));
    }

    [Fact]
    public async Task A13_a_forged_or_malformed_token_is_400_naming_token_and_changes_nothing()
    {
        var (_, username, tokens) = await _http.NewUserAsync("reset");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;
        var (forged, _) = PasswordResets.NewToken();

        foreach (var token in new[] { forged, "", new string('a', 500), "not-a-token" })
        {
            using var response = await ConfirmAsync(token, NewPassword);
            await AssertInvalidFieldAsync(response, "token", NewPassword);
        }

        Assert.Equal(hashBefore, (await Server.FindUserAsync(username))!.PasswordHash);
        using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
    }

    [Fact]
    public async Task A13_a_link_issued_before_the_password_changed_no_longer_works()
    {
        var (_, username, tokens) = await _http.NewUserAsync("reset");
        var token = await RequestLinkAsync(username);
        using (var changed = await _http.PostWithTokenAsync("api/me/password", tokens.AccessToken, new { currentPassword = ClientFlows.Password, newPassword = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.NoContent, changed.StatusCode);
        }

        using var response = await ConfirmAsync(token, "yet another long passphrase 5150");
        await AssertInvalidFieldAsync(response, "token", token);
        await _http.LoginAsync(username, NewPassword);
    }

    [Fact]
    public async Task A13_a_new_password_against_the_policy_is_400_naming_password_and_the_link_still_works()
    {
        var (_, username, _) = await _http.NewUserAsync("reset");
        var token = await RequestLinkAsync(username);

        using (var weak = await ConfirmAsync(token, "short"))
        {
            await AssertInvalidFieldAsync(weak, "password", token);
        }

        using var done = await ConfirmAsync(token, NewPassword);
        Assert.Equal(HttpStatusCode.NoContent, done.StatusCode);
    }

    [Fact]
    public async Task A06_a_reset_for_a_known_and_an_unknown_address_answers_the_same_after_the_same_work()
    {
        var (known, username, _) = await _http.NewUserAsync("reset");
        var unknown = $"{ClientFlows.UniqueName("nobody")}@example.com";
        var auditBefore = await CountAuditAsync(null, "authn_password_reset_request");

        var answers = new List<(HttpStatusCode Status, string Body, string Headers, TimeSpan Took)>();
        foreach (var email in new[] { $"{username}@example.com", unknown })
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var response = await _http.PostAsJsonAsync("api/accounts/password-reset", new { email });
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            var headers = string.Join("|", response.Headers.Concat(response.Content.Headers)
                .Where(h => h.Key is not ("Date" or "traceparent")).OrderBy(h => h.Key)
                .Select(h => h.Key == "RateLimit" ? h.Key : h.Key + "=" + string.Join(",", h.Value))); // the remaining budget counts down
            answers.Add((response.StatusCode, await response.Content.ReadAsStringAsync(), headers, took));
        }

        Assert.Equal(HttpStatusCode.Accepted, answers[0].Status);
        Assert.Equal(answers[0].Status, answers[1].Status);
        Assert.Equal(answers[0].Body, answers[1].Body);
        Assert.Equal(answers[0].Headers, answers[1].Headers);
        Assert.Equal(PasswordResets.SentMessage, JsonDocument.Parse(answers[0].Body).RootElement.GetProperty("message").GetString());
        // The same work on both paths: one transaction with one audit event each, and neither answers before the floor.
        Assert.Equal(auditBefore + 2, await CountAuditAsync(null, "authn_password_reset_request"));
        Assert.All(answers, a => Assert.True(a.Took >= PasswordResets.ResponseFloor, $"answered after {a.Took}"));

        // Only the account's owner gets mail; nothing goes to the unknown address.
        var mail = await NextMailToAsync($"{username}@example.com");
        Assert.NotNull(mail);
        Assert.DoesNotContain(await Smtp.ReceivedWithinAsync(TimeSpan.FromSeconds(1)),
            m => m.To.Mailboxes.Any(a => a.Address.Equals(unknown, StringComparison.OrdinalIgnoreCase)));
        Assert.Equal(1, await CountAuditAsync(known, "authn_password_reset_request"));
    }

    [Theory]
    [InlineData("""{"email":"not an address"}""", "email")]
    [InlineData("""{"email":"a@example.com","role":"admin"}""", "role")]
    [InlineData("""{}""", "email")]
    public async Task V07_a_malformed_reset_request_is_400(string body, string field)
    {
        using var response = await _http.PostRawAsync("api/accounts/password-reset", body);
        await AssertInvalidFieldAsync(response, field);
    }

    [Fact]
    public async Task V07_a_malformed_reset_confirmation_is_400()
    {
        using var response = await _http.PostRawAsync("api/accounts/password-reset/confirm", """{"token":"x"}""");
        await AssertInvalidFieldAsync(response, "password");
    }

    [Fact]
    public async Task A13_an_expired_link_is_refused_at_its_expiry_and_works_one_second_before()
    {
        var time = new SteppingClock();
        await using var smtp = SmtpSink.Started();
        await using var server = await PortcullisServer.StartAsync(smtp.Settings, services =>
        {
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(time);
        });
        using var http = server.CreateClient();
        var (_, first, _) = await http.NewUserAsync("expiry");
        var (_, second, _) = await http.NewUserAsync("expiry");

        var firstToken = await RequestLinkAsync(http, smtp, first);
        var secondToken = await RequestLinkAsync(http, smtp, second);
        time.Advance(PasswordResets.Lifetime - TimeSpan.FromSeconds(1));
        using (var before = await http.PostAsJsonAsync("api/accounts/password-reset/confirm", new { token = firstToken, password = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.NoContent, before.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(1));
        using (var at = await http.PostAsJsonAsync("api/accounts/password-reset/confirm", new { token = secondToken, password = NewPassword }))
        {
            await AssertInvalidFieldAsync(at, "token", secondToken);
        }

        await http.LoginAsync(second); // still the old password
    }

    private Task<HttpResponseMessage> ConfirmAsync(string token, string password) =>
        _http.PostAsJsonAsync("api/accounts/password-reset/confirm", new { token, password });

    private Task<string> RequestLinkAsync(string username) => RequestLinkAsync(_http, Smtp, username);

    private static async Task<string> RequestLinkAsync(HttpClient http, SmtpSink smtp, string username)
    {
        using (var asked = await http.PostAsJsonAsync("api/accounts/password-reset", new { email = $"{username}@example.com" }))
        {
            Assert.Equal(HttpStatusCode.Accepted, asked.StatusCode);
        }

        var mail = await smtp.NextToAsync($"{username}@example.com", ResetSubject);
        return SmtpSink.LinkIn(mail, PasswordResets.ResetPath).Token;
    }

    /// <summary>The next message to <paramref name="to"/>: the sink is shared by the class's tests, which run one at a time.</summary>
    private Task<MimeMessage> NextMailToAsync(string to) => Smtp.NextToAsync(to, ResetSubject);

    private async Task<int> CountAuditAsync(Guid? user, params string[] names)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var target = user is null ? null : $"user:{user}";
        return await db.AuditEvents.AsNoTracking().CountAsync(e => names.Contains(e.Name) && (target == null || e.Target == target));
    }
}
