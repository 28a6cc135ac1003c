using Microsoft.Playwright;
using MimeKit;
using Portcullis.Accounts;
using Portcullis.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The forgotten-password pages in Chromium (A13): from the sign-in page's link to the mail, the link followed, a new
/// password chosen and used to sign in; the link replayed is refused on the page. No console error, no CSP violation.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class BrowserPasswordResetTests(MailServerFixture fixture) : IClassFixture<MailServerFixture>
{
    private const string NewPassword = "a second and different passphrase 2904";

    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task A13_forgot_password_sends_a_link_that_sets_a_new_password_once_in_the_browser()
    {
        var username = ClientFlows.UniqueName("browserreset");
        await _http.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(Url("signin"));
        await page.GetByRole(AriaRole.Link, new() { Name = "Forgot password?" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Forgot your password?" })).ToBeVisibleAsync();
        await page.GetByLabel("E-mail address", new() { Exact = true }).FillAsync($"{username}@example.com");
        await Button(page, "Send the link").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync(PasswordResets.SentMessage);

        var mail = await NextMailToAsync($"{username}@example.com");
        var (link, token) = SmtpSink.LinkIn(mail, PasswordResets.ResetPath);
        _server.Canary.Record(token);
        await page.GotoAsync(link.AbsoluteUri);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Choose a new password" })).ToBeVisibleAsync();
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync(NewPassword);
        await Button(page, "Save the new password").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your password is changed");

        await page.GetByRole(AriaRole.Link, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByLabel("Username", new() { Exact = true }).FillAsync(username);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(NewPassword);
        await Button(page, "Sign in").ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/account");

        // The same link again: the form shows, but posting it is refused with the one message for a bad link.
        await page.GotoAsync(link.AbsoluteUri);
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync("yet another long passphrase 5150");
        browser.ExpectErrorPage(link.AbsoluteUri, 400);
        await Button(page, "Save the new password").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync(PasswordResets.InvalidLink);
        browser.AssertNoProblems();
    }

    private Task<MimeMessage> NextMailToAsync(string to) => fixture.Smtp.NextToAsync(to, "Choose a new password");

    private string Url(string path) => new Uri(_server.BaseAddress, path.TrimStart('/')).AbsoluteUri;

    private static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });
}
