using Microsoft.Playwright;
using Portcullis.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Issue 18 end to end in a real browser: a third-party site (<see cref="RelyingParty"/>, ASP.NET Core's OpenID
/// Connect handler) signs a user in through Portcullis's sign-in and consent pages, refreshes, and signs out.
/// <para>
/// The pages' contract: the sign-in page is <c>/signin</c> with fields labelled "Username" and "Password" and a
/// "Sign in" button; the consent page names the client and has "Allow" and "Deny"; end-session may ask with a
/// "Sign out" button.
/// </para>
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class BrowserSignInTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task A_user_signs_in_to_a_third_party_site_consents_refreshes_and_signs_out()
    {
        var username = ClientFlows.UniqueName("browser");
        var id = await _http.RegisterOkAsync(username);
        await using var rp = await RelyingParty.StartAsync(_server);
        await rp.RegisterAsync();
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        // The site sends the browser to Portcullis, which asks who it is.
        await page.GotoAsync(rp.Url("/login"));
        await SignInAsync(page, username);

        // A third-party client: Portcullis asks before handing the site anything, naming the site.
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Allow {rp.Client.DisplayName}?" })).ToBeVisibleAsync();
        await Expect(Button(page, "Deny")).ToBeVisibleAsync();
        await Button(page, "Allow").ClickAsync();

        // Back at the site, signed in as this user, with a refresh token (offline_access) saved.
        await page.WaitForURLAsync(rp.Url("/me"));
        Assert.Equal(id.ToString(), await page.Locator("#sub").TextContentAsync());
        Assert.Equal("saved", await page.Locator("#refresh-token").TextContentAsync());

        // The refresh token works at the token endpoint (the site's own back-channel call), twice: it rolls.
        for (var i = 0; i < 2; i++)
        {
            await page.GotoAsync(rp.Url("/refresh"));
            Assert.Equal("200", await page.Locator("#status").TextContentAsync());
            Assert.Equal("issued", await page.Locator("#access-token").TextContentAsync());
        }

        // Portcullis has a session now: a second sign-in at the site passes straight through, no page shown...
        await page.GotoAsync(rp.Url("/login"));
        await page.WaitForURLAsync(rp.Url("/me"));
        Assert.Equal(id.ToString(), await page.Locator("#sub").TextContentAsync());

        // ...but prompt=login makes it ask for the password again all the same.
        await page.GotoAsync(rp.Url("/login?prompt=login"));
        await SignInAsync(page, username);
        await AllowIfAskedAsync(page, rp);
        Assert.Equal(id.ToString(), await page.Locator("#sub").TextContentAsync());

        // RP-initiated logout ends both sessions and comes back to the site.
        await page.GotoAsync(rp.Url("/logout"));
        await Expect(page.Locator("#state").Or(Button(page, "Sign out"))).ToBeVisibleAsync();
        if (await Button(page, "Sign out").IsVisibleAsync())
        {
            await Button(page, "Sign out").ClickAsync();
        }

        await page.WaitForURLAsync(rp.Url("/signed-out"));
        Assert.Equal("signed out", await page.Locator("#state").TextContentAsync());
        await page.GotoAsync(rp.Url("/"));
        Assert.Equal("anonymous", await page.Locator("#state").TextContentAsync());

        // The Portcullis session is gone too: signing in at the site asks for the password again.
        await page.GotoAsync(rp.Url("/login"));
        await ExpectSignInPageAsync(page);

        browser.AssertNoProblems();
        Assert.True(rp.Log.IsEmpty, string.Join('\n', rp.Log));
    }

    [Fact]
    public async Task A_user_who_denies_consent_is_sent_back_to_the_site_signed_out()
    {
        var username = ClientFlows.UniqueName("browser");
        await _http.RegisterOkAsync(username);
        await using var rp = await RelyingParty.StartAsync(_server);
        await rp.RegisterAsync();
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(rp.Url("/login"));
        await SignInAsync(page, username);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Allow {rp.Client.DisplayName}?" })).ToBeVisibleAsync();
        await Button(page, "Deny").ClickAsync();

        // error=access_denied at the callback: the handler sends the browser to the site's access-denied page.
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/denied" && url.StartsWith(rp.BaseAddress.AbsoluteUri, StringComparison.Ordinal));
        await page.GotoAsync(rp.Url("/"));
        Assert.Equal("anonymous", await page.Locator("#state").TextContentAsync());
        browser.AssertNoProblems();
    }

    private async Task ExpectSignInPageAsync(IPage page)
    {
        var signIn = new Uri(_server.BaseAddress, "signin");
        await page.WaitForURLAsync(url => new Uri(url) is var u && u.GetLeftPart(UriPartial.Path) == signIn.AbsoluteUri);
        await Expect(page.GetByLabel("Username", new() { Exact = true })).ToBeVisibleAsync();
    }

    private async Task SignInAsync(IPage page, string username)
    {
        await ExpectSignInPageAsync(page);
        await page.GetByLabel("Username", new() { Exact = true }).FillAsync(username);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(ClientFlows.Password);
        await Button(page, "Sign in").ClickAsync();
    }

    /// <summary>Consent already given may or may not be asked again after a fresh sign-in; either ends at <c>/me</c>.</summary>
    private static async Task AllowIfAskedAsync(IPage page, RelyingParty rp)
    {
        var allow = Button(page, "Allow");
        await Expect(page.Locator("#sub").Or(allow)).ToBeVisibleAsync();
        if (await allow.IsVisibleAsync())
        {
            await allow.ClickAsync();
        }

        await page.WaitForURLAsync(rp.Url("/me"));
    }

    private static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });
}
