using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using Portcullis.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Issue 19's authenticator pages in a real browser, as a person uses them: set it up from the account page (QR code
/// and key, a wrong then a right first code, the recovery codes), sign in again with a code, turn it off. The QR code
/// is inline SVG under the pages' strict policy: the test ends with no console error and no CSP violation, and axe
/// finds nothing serious on the new pages.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class BrowserTwoFactorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;

    [Fact]
    public async Task A_person_sets_up_an_authenticator_app_signs_in_with_a_code_and_turns_it_off()
    {
        var username = ClientFlows.UniqueName("totp");
        await fixture.Client.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(Url("signin"));
        await SignInAsync(page, username);
        await ArriveAtAsync(page, "/account");
        await Button(page, "Set up an authenticator app").ClickAsync();

        await ArriveAtAsync(page, "/account/authenticator");
        await Expect(page.GetByRole(AriaRole.Img, new() { Name = "QR code of the key" })).ToBeVisibleAsync();
        var box = await page.Locator("svg.qr").BoundingBoxAsync();
        Assert.True(box is { Width: > 100, Height: > 100 }, "the stylesheet sizes the QR code"); // not inline style
        var key = TwoFactorTests.Base32((await page.Locator("#key").TextContentAsync())!.Replace(" ", "", StringComparison.Ordinal));
        await AssertAccessibleAsync(page);

        // A wrong code: an alert the field points to.
        await page.GetByLabel("Current password", new() { Exact = true }).FillAsync(ClientFlows.Password);
        var code = page.GetByLabel("Code from the app", new() { Exact = true });
        await code.FillAsync(TwoFactorTests.OtherThan(key));
        browser.ExpectErrorPage(Url("account/authenticator"), 400);
        await Button(page, "Turn on").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("That code is not right");
        await Expect(code).ToHaveAttributeAsync("aria-invalid", "true");

        // The right one: ten recovery codes, shown once.
        await page.GetByLabel("Current password", new() { Exact = true }).FillAsync(ClientFlows.Password);
        await code.FillAsync(TwoFactorTests.Totp(key, TwoFactorTests.Step() - 1));
        await Button(page, "Turn on").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Save your recovery codes" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.List, new() { Name = "Recovery codes" }).GetByRole(AriaRole.Listitem)).ToHaveCountAsync(10);
        await AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Link, new() { Name = "Back to your account" }).ClickAsync();
        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByText("Recovery codes left: 10")).ToBeVisibleAsync();

        // Signed out, the password leads to the code page; the code to the account.
        await Button(page, "Sign out").ClickAsync();
        await ArriveAtAsync(page, "/signin");
        await SignInAsync(page, username);
        await ArriveAtAsync(page, "/signin/code");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Enter your code" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);
        await page.GetByLabel("Code", new() { Exact = true }).FillAsync(TwoFactorTests.Totp(key, TwoFactorTests.Step()));
        await Button(page, "Verify").ClickAsync();
        await ArriveAtAsync(page, "/account");

        // Turned off with the password: signed out everywhere; the password alone signs in again.
        await page.GetByLabel("Your password or a code from your app", new() { Exact = true }).FillAsync(ClientFlows.Password);
        await Button(page, "Turn off the authenticator app").ClickAsync();
        await ArriveAtAsync(page, "/signin");
        await SignInAsync(page, username);
        await ArriveAtAsync(page, "/account");
        await Expect(Button(page, "Set up an authenticator app")).ToBeVisibleAsync();
        browser.AssertNoProblems();
    }

    private async Task ArriveAtAsync(IPage page, string path)
    {
        try
        {
            await page.WaitForURLAsync(url => url.StartsWith(_server.BaseAddress.AbsoluteUri, StringComparison.Ordinal) && new Uri(url).AbsolutePath == path);
        }
        catch (TimeoutException)
        {
            var said = await page.Locator("[role=alert], [role=status]").AllTextContentsAsync();
            Assert.Fail($"Expected {path}, still at {page.Url}, which says: {string.Join(" | ", said)}");
        }
    }

    private string Url(string path) => new Uri(_server.BaseAddress, path).AbsoluteUri;

    private static async Task SignInAsync(IPage page, string username)
    {
        await page.GetByLabel("Username", new() { Exact = true }).FillAsync(username);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(ClientFlows.Password);
        await Button(page, "Sign in").ClickAsync();
    }

    private static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });

    private static async Task AssertAccessibleAsync(IPage page)
    {
        var result = await page.RunAxe();
        Assert.NotEmpty(result.Passes);
        var serious = (result.Violations ?? []).Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(serious.Count == 0, $"axe found on {page.Url}:\n" + string.Join('\n', serious.Select(v => $"{v.Impact} {v.Id}: {v.Help}")));
    }
}
