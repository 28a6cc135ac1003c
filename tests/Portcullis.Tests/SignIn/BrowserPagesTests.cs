using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using Portcullis.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Issue 18's hosted pages one by one in a real browser, as a person uses them: sign-up and sign-in with their error
/// messages (tied to the fields, announced, focused), sign-in with JavaScript off, the account page (password change,
/// another session ended, a consent revoked, sign-out), the end-session confirmation and the keyboard order of the
/// sign-in form. Every page is checked by axe-core (no serious or critical violation) and every test ends with no
/// console error and no Content-Security-Policy violation.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class BrowserPagesTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string NewPassword = "a second and different passphrase 2904";

    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task Sign_up_shows_a_field_error_tied_to_its_field_then_creates_the_account_and_lands_on_the_account_page()
    {
        var username = ClientFlows.UniqueName("signup");
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(Url("signup"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Create an account" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);

        // A password under the policy's minimum: the page comes back with the error on that field.
        await page.GetByLabel("Username", new() { Exact = true }).FillAsync(username);
        await page.GetByLabel("E-mail address", new() { Exact = true }).FillAsync($"{username}@example.com");
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync("too short");
        browser.ExpectErrorPage(page.Url, 400);
        await Button(page, "Create account").ClickAsync();

        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("Please correct the fields below.");
        var password = page.GetByLabel("Password", new() { Exact = true });
        await Expect(password).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(password).ToHaveAccessibleDescriptionAsync(new System.Text.RegularExpressions.Regex("at least 15 characters", System.Text.RegularExpressions.RegexOptions.IgnoreCase));
        var describedBy = (await password.GetAttributeAsync("aria-describedby"))!.Split(' ');
        var errorId = Assert.Single(describedBy, id => id.EndsWith("-error", StringComparison.Ordinal));
        await Expect(page.Locator($"#{errorId}")).ToBeVisibleAsync();
        // The field in error is where the keyboard is, ready to be corrected; the other fields are not marked.
        await Expect(password).ToBeFocusedAsync();
        await Expect(page.GetByLabel("Username", new() { Exact = true })).Not.ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(page.GetByLabel("Username", new() { Exact = true })).ToHaveValueAsync(username); // kept
        await AssertAccessibleAsync(page);

        // Corrected: the account exists, the browser is signed in to it.
        await password.FillAsync(ClientFlows.Password);
        await Button(page, "Create account").ClickAsync();

        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Your account" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "Username" })).ToContainTextAsync(username);
        await AssertAccessibleAsync(page);
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task Sign_in_with_a_wrong_password_shows_an_alert_tied_to_the_fields_and_the_right_one_signs_in()
    {
        var username = ClientFlows.UniqueName("signin");
        await _http.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(Url("signin"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);

        browser.ExpectErrorPage(page.Url, 400);
        await SignInAsync(page, username, "not the password at all 1234");

        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The username or password is incorrect.");
        foreach (var field in new[] { "Username", "Password" })
        {
            var input = page.GetByLabel(field, new() { Exact = true });
            await Expect(input).ToHaveAttributeAsync("aria-invalid", "true");
            await Expect(input).ToHaveAccessibleDescriptionAsync("The username or password is incorrect.");
        }

        await Expect(page.GetByLabel("Username", new() { Exact = true })).ToHaveValueAsync(username); // kept
        await Expect(page.GetByLabel("Password", new() { Exact = true })).ToHaveValueAsync(""); // never sent back
        await AssertAccessibleAsync(page);

        await SignInAsync(page, username, ClientFlows.Password);

        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Your account" })).ToBeVisibleAsync();
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task With_JavaScript_off_a_person_still_signs_in_and_reaches_the_account_page()
    {
        var username = ClientFlows.UniqueName("noscript");
        await _http.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var context = await browser.NewContextAsync(javaScriptEnabled: false);
        var page = await context.NewPageAsync();

        await page.GotoAsync(Url("account"));

        // Sent to sign in first, and back to the account page after: plain links, forms and redirects.
        await ArriveAtAsync(page, "/signin");
        await SignInAsync(page, username, ClientFlows.Password);
        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "Username" })).ToContainTextAsync(username);

        // And signs out again, still without a script.
        await Button(page, "Sign out").ClickAsync();
        await ArriveAtAsync(page, "/signin");
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("You are signed out.");
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task Changing_the_password_refuses_a_wrong_current_one_then_signs_out_everywhere_and_the_new_one_signs_in()
    {
        var username = ClientFlows.UniqueName("chpw");
        await _http.RegisterOkAsync(username);
        _server.Canary.Record(NewPassword);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();
        var other = await (await browser.NewContextAsync()).NewPageAsync();
        await other.GotoAsync(Url("signin"));
        await SignInAsync(other, username, ClientFlows.Password);
        await ArriveAtAsync(other, "/account");

        await page.GotoAsync(Url("signin"));
        await SignInAsync(page, username, ClientFlows.Password);
        await ArriveAtAsync(page, "/account");

        // A wrong current password: refused, said in an alert that the field points to.
        await page.GetByLabel("Current password", new() { Exact = true }).FillAsync("not the password at all 1234");
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync(NewPassword);
        browser.ExpectErrorPage(Url("account?handler=Password"), 400);
        await Button(page, "Change password").ClickAsync();

        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The current password is incorrect.");
        var current = page.GetByLabel("Current password", new() { Exact = true });
        await Expect(current).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(current).ToHaveAccessibleDescriptionAsync("The current password is incorrect.");
        await Expect(current).ToBeFocusedAsync();
        await Expect(current).ToHaveValueAsync("");
        await AssertAccessibleAsync(page);

        // The right one: changed, and every session ends, this one too.
        await current.FillAsync(ClientFlows.Password);
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync(NewPassword);
        await Button(page, "Change password").ClickAsync();

        await ArriveAtAsync(page, "/signin");
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("You are signed out.");
        await AssertAccessibleAsync(page);
        await other.GotoAsync(Url("account"));
        await ArriveAtAsync(other, "/signin");

        // The old password no longer works; the new one does.
        browser.ExpectErrorPage(page.Url, 400);
        await SignInAsync(page, username, ClientFlows.Password);
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The username or password is incorrect.");
        await SignInAsync(page, username, NewPassword);
        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "Username" })).ToContainTextAsync(username);
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task The_account_page_ends_another_session_revokes_a_consent_and_signs_out()
    {
        var username = ClientFlows.UniqueName("acct");
        await _http.RegisterOkAsync(username);
        await using var rp = await RelyingParty.StartAsync(_server);
        await rp.RegisterAsync();
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        // A second browser signed in as the same person.
        var other = await (await browser.NewContextAsync()).NewPageAsync();
        await other.GotoAsync(Url("signin"));
        await SignInAsync(other, username, ClientFlows.Password);
        await ArriveAtAsync(other, "/account");

        // This browser signs in to a third-party site and allows it.
        await page.GotoAsync(rp.Url("/login"));
        await ArriveAtAsync(page, "/signin");
        await AssertAccessibleAsync(page);
        await SignInAsync(page, username, ClientFlows.Password);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Allow {rp.Client.DisplayName}?" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);
        await Button(page, "Allow").ClickAsync();
        await page.WaitForURLAsync(rp.Url("/me"));

        await page.GotoAsync(Url("account"));
        await Expect(page.GetByRole(AriaRole.Cell, new() { Name = "This browser", Exact = true })).ToHaveCountAsync(1);
        var otherRow = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Cell, new() { Name = "Browser", Exact = true }) });
        await Expect(otherRow).ToHaveCountAsync(1);
        var consentRow = page.GetByRole(AriaRole.Row).Filter(new() { Has = page.GetByRole(AriaRole.Cell, new() { Name = rp.Client.DisplayName, Exact = true }) });
        await Expect(consentRow).ToHaveCountAsync(1);
        await AssertAccessibleAsync(page);

        // End the other browser's session: it is signed out at its next request.
        await otherRow.GetByRole(AriaRole.Button).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("The session was ended.");
        await Expect(otherRow).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Cell, new() { Name = "This browser", Exact = true })).ToHaveCountAsync(1);
        await other.GotoAsync(Url("account"));
        await ArriveAtAsync(other, "/signin");

        // Revoke the site's access: gone from the list, and its refresh token no longer works.
        await consentRow.GetByRole(AriaRole.Button, new() { Name = $"Revoke access for {rp.Client.DisplayName}", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Access was revoked.");
        await Expect(consentRow).ToHaveCountAsync(0);
        await AssertAccessibleAsync(page);
        await page.GotoAsync(rp.Url("/refresh"));
        Assert.Equal("400", await page.Locator("#status").TextContentAsync());

        // Sign out: back to the sign-in page, which says so, and the account page asks to sign in again.
        await page.GotoAsync(Url("account"));
        await Button(page, "Sign out").ClickAsync();
        await ArriveAtAsync(page, "/signin");
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("You are signed out.");
        await page.GotoAsync(Url("account"));
        await ArriveAtAsync(page, "/signin");

        browser.AssertNoProblems();
        Assert.True(rp.Log.IsEmpty, string.Join('\n', rp.Log));
    }

    [Fact]
    public async Task End_session_without_an_ID_token_asks_first_and_Stay_signed_in_keeps_the_session()
    {
        var username = ClientFlows.UniqueName("endsess");
        await _http.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(Url("signin"));
        await SignInAsync(page, username, ClientFlows.Password);
        await ArriveAtAsync(page, "/account");

        // No id_token_hint: a link on any site could lead here, so the person is asked.
        await page.GotoAsync(Url("connect/endsession"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign out?" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);
        await Button(page, "Stay signed in").ClickAsync();

        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "Username" })).ToContainTextAsync(username);

        // Asked again, this time "Sign out": the session ends and the page says so.
        await page.GotoAsync(Url("connect/endsession"));
        await Button(page, "Sign out").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "You are signed out" })).ToBeVisibleAsync();
        await AssertAccessibleAsync(page);
        await page.GotoAsync(Url("account"));
        await ArriveAtAsync(page, "/signin");
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task End_session_for_a_site_names_it_and_Sign_out_returns_to_its_registered_address_with_the_state()
    {
        var username = ClientFlows.UniqueName("endsite");
        await _http.RegisterOkAsync(username);
        await using var rp = await RelyingParty.StartAsync(_server);
        await rp.RegisterAsync();
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(rp.Url("/login"));
        await ArriveAtAsync(page, "/signin");
        await SignInAsync(page, username, ClientFlows.Password);
        await Button(page, "Allow").ClickAsync();
        await page.WaitForURLAsync(rp.Url("/me"));

        // The site's name and its registered return address, but no ID token: asked, naming the site.
        var state = "bye-" + Guid.NewGuid().ToString("N");
        await page.GotoAsync(Url("connect/endsession?client_id=" + Uri.EscapeDataString(rp.Client.ClientId)
            + "&post_logout_redirect_uri=" + Uri.EscapeDataString(rp.PostLogoutRedirectUri.AbsoluteUri) + "&state=" + state));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Sign out?" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Main)).ToContainTextAsync($"{rp.Client.DisplayName} asks to sign you out of Portcullis");
        await AssertAccessibleAsync(page);

        // The answer is redirected to the site's registered address with its state: the page's form-action lets
        // exactly that origin through (a CSP violation would be recorded). (The site's handler answers a state it did
        // not issue with an empty page, and that is the end of it.)
        await Button(page, "Sign out").ClickAsync();
        await Expect(page).ToHaveURLAsync(rp.PostLogoutRedirectUri.AbsoluteUri + "?state=" + state);
        await page.GotoAsync(Url("account"));
        await ArriveAtAsync(page, "/signin");
        browser.AssertNoProblems();
        Assert.True(rp.Log.IsEmpty, string.Join('\n', rp.Log));
    }

    [Fact]
    public async Task A_refused_authorization_request_is_an_accessible_error_page()
    {
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        // An unknown client: shown on Portcullis, never redirected anywhere.
        var (_, challenge) = BrowserFlow.NewPkce();
        var refused = Url(BrowserFlow.AuthorizeUrl(BrowserFlow.CodeRequest("no-such-client", "https://rp.example/cb", challenge)));
        browser.ExpectErrorPage(refused, 400);
        var response = await page.GotoAsync(refused);

        Assert.Equal(400, response!.Status);
        Assert.Equal(refused, page.Url);

        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "This sign-in request was refused" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).Not.ToBeEmptyAsync();
        await AssertAccessibleAsync(page);
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task The_keyboard_goes_Username_Password_Sign_in_on_the_sign_in_page_and_Enter_signs_in()
    {
        var username = ClientFlows.UniqueName("keys");
        await _http.RegisterOkAsync(username);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(Url("signin"));

        // The first field has the focus when the page opens; Tab goes on in reading order.
        var usernameField = page.GetByLabel("Username", new() { Exact = true });
        await Expect(usernameField).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(username);
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.GetByLabel("Password", new() { Exact = true })).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(ClientFlows.Password);
        await page.Keyboard.PressAsync("Tab");
        await Expect(Button(page, "Sign in")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Create one" })).ToBeFocusedAsync();

        // Shift+Tab walks back the same way.
        await page.Keyboard.PressAsync("Shift+Tab");
        await Expect(Button(page, "Sign in")).ToBeFocusedAsync();

        // Enter on the button submits the form.
        await page.Keyboard.PressAsync("Enter");
        await ArriveAtAsync(page, "/account");
        await Expect(page.GetByRole(AriaRole.Row, new() { Name = "Username" })).ToContainTextAsync(username);
        browser.AssertNoProblems();
    }

    /// <summary>
    /// Waits for the browser to be at <paramref name="path"/> on Portcullis; if it stays elsewhere, the failure says
    /// where and what that page announces (a refusal, a "busy"), not just that time ran out.
    /// </summary>
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

    private string Url(string path) => new Uri(_server.BaseAddress, path.TrimStart('/')).AbsoluteUri;

    private static async Task SignInAsync(IPage page, string username, string password)
    {
        await page.GetByLabel("Username", new() { Exact = true }).FillAsync(username);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await Button(page, "Sign in").ClickAsync();
    }

    private static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });

    /// <summary>
    /// axe-core on the page as it is now, under its own strict CSP: no violation of serious or critical impact.
    /// Lesser ones, and what axe could not decide alone, are written as diagnostic messages, to be read, not failed on.
    /// </summary>
    private static async Task AssertAccessibleAsync(IPage page)
    {
        var result = await page.RunAxe();
        Assert.NotEmpty(result.Passes); // the checker ran on this page (labels, landmarks, names...)
        foreach (var review in result.Incomplete ?? [])
        {
            TestContext.Current.SendDiagnosticMessage($"axe (needs review) on {page.Url}: {Describe(review)}");
        }

        var violations = result.Violations ?? [];
        foreach (var minor in violations.Where(v => v.Impact is not ("serious" or "critical")))
        {
            TestContext.Current.SendDiagnosticMessage($"axe ({minor.Impact}) on {page.Url}: {Describe(minor)}");
        }

        var serious = violations.Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(serious.Count == 0, $"axe found on {page.Url}:\n" + string.Join('\n', serious.Select(Describe)));
    }

    private static string Describe(AxeResultItem violation) =>
        $"{violation.Impact} {violation.Id}: {violation.Help} at " + string.Join("; ", violation.Nodes.Select(n => $"{n.Target} {n.Html}"));
}
