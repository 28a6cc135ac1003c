using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using Portcullis.Accounts;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>A mail server and <c>Accounts:RequireVerifiedEmail=true</c>.</summary>
public sealed class VerifiedEmailFixture : MailServerFixture
{
    protected override Dictionary<string, string?> MoreSettings => new() { ["Accounts:RequireVerifiedEmail"] = "true" };
}

/// <summary>
/// E-mail verification at sign-up (AUTH-07, AUTH-09): the link arrives, works once, is refused forged; with
/// <c>Accounts:RequireVerifiedEmail</c> an unverified account cannot sign in (token endpoint and page); a sign-up
/// with a taken address gets the usual answer and the owner is told by mail.
/// </summary>
public sealed class EmailVerificationTests(VerifiedEmailFixture fixture) : IClassFixture<VerifiedEmailFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task A13_sign_up_sends_a_verification_link_that_works_once_and_lets_the_account_sign_in()
    {
        var username = ClientFlows.UniqueName("verify");
        await _http.RegisterOkAsync(username);

        using (var refused = await _http.PasswordGrantAsync(username, ClientFlows.Password))
        {
            var body = await Refusal.AssertInvalidGrantAsync(refused);
            Assert.Contains(Credentials.EmailNotVerified, body.ToString(), StringComparison.Ordinal);
        }

        using (var browser = new Portcullis.Tests.SignIn.BrowserFlow(Server))
        using (var page = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, page.StatusCode);
            Assert.Contains("not verified yet", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
        }

        var mail = await NextMailToAsync($"{username}@example.com");
        Assert.Equal("Confirm your e-mail address", mail.Subject);
        var (_, token) = SmtpSink.LinkIn(mail, EmailVerification.VerifyPath);
        Server.Canary.Record(token);
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var row = await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AccountTokens.AsNoTracking()
                .SingleAsync(t => t.Hash == PasswordResets.Hash(token));
            Assert.Equal(AccountTokenPurposes.Verify, row.Purpose);
            Assert.Equal(EmailVerification.Lifetime, row.ExpiresAt - row.CreatedAt);
        }

        using (var confirmed = await _http.PostAsJsonAsync("api/accounts/verify-email", new { token }))
        {
            Assert.Equal(HttpStatusCode.NoContent, confirmed.StatusCode);
        }

        Assert.True((await Server.FindUserAsync(username))!.EmailConfirmed);
        await _http.LoginAsync(username);

        using var replay = await _http.PostAsJsonAsync("api/accounts/verify-email", new { token });
        await AssertInvalidFieldAsync(replay, "token", token);
        using var forged = await _http.PostAsJsonAsync("api/accounts/verify-email", new { token = PasswordResets.NewToken().Token });
        await AssertInvalidFieldAsync(forged, "token");
    }

    [Fact]
    public async Task A06_sign_up_with_a_taken_address_answers_like_a_new_account_and_mails_the_owner()
    {
        var owner = ClientFlows.UniqueName("owner");
        await _http.RegisterOkAsync(owner);
        await NextMailToAsync($"{owner}@example.com"); // the owner's own verification message
        var usersBefore = await Server.CountUsersAsync();

        var fresh = ClientFlows.UniqueName("fresh");
        using var created = await _http.RegisterAsync(fresh);
        var intruder = ClientFlows.UniqueName("intruder");
        using var taken = await _http.RegisterAsync(intruder, email: $"{owner}@example.com");

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(created.StatusCode, taken.StatusCode);
        Assert.Equal(created.Headers.Location, taken.Headers.Location);
        var a = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        var b = JsonDocument.Parse(await taken.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(a.EnumerateObject().Select(p => p.Name), b.EnumerateObject().Select(p => p.Name));
        Assert.Equal(intruder, b.GetProperty("username").GetString());
        Assert.Equal(usersBefore + 1, await Server.CountUsersAsync()); // only the fresh account exists
        Assert.Null(await Server.FindUserAsync(intruder));

        var told = await NextMailToAsync($"{owner}@example.com");
        Assert.Equal("Someone tried to create an account with your address", told.Subject);
        Assert.DoesNotContain("https://", told.TextBody, StringComparison.Ordinal); // no link to act on
    }

    private async Task<MimeMessage> NextMailToAsync(string to)
    {
        while (true)
        {
            var mail = await fixture.Smtp.NextAsync();
            if (mail.To.Mailboxes.Any(m => m.Address.Equals(to, StringComparison.OrdinalIgnoreCase)))
            {
                return mail;
            }
        }
    }
}
