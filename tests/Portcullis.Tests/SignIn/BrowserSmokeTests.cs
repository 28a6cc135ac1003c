using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The browser-test kit works before any sign-in page exists: chromium reaches a real Portcullis over TLS trusting
/// only its pinned certificate, the recorder notices a broken page, and the relying party serves clean pages.
/// </summary>
[Collection(BrowserTests.Name)]
public sealed class BrowserSmokeTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;

    [Fact]
    public async Task Chromium_opens_a_Portcullis_page_over_HTTPS_trusting_the_pinned_certificate()
    {
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        var response = await page.GotoAsync(new Uri(_server.BaseAddress, ".well-known/openid-configuration").AbsoluteUri);

        Assert.NotNull(response);
        Assert.Equal((int)HttpStatusCode.OK, response.Status);
        var discovery = JsonDocument.Parse(await response.TextAsync()).RootElement;
        Assert.Equal(_server.BaseAddress.AbsoluteUri, discovery.GetProperty("issuer").GetString());
        // The security headers reached the browser as sent (the same response a sign-in page will get).
        Assert.Equal("default-src 'none'; frame-ancestors 'none'", await response.HeaderValueAsync("content-security-policy"));
        browser.AssertNoProblems();
    }

    [Fact]
    public async Task Chromium_refuses_the_server_when_another_certificate_is_pinned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = new CertificateRequest("CN=not the test server", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        await using var browser = await Browser.LaunchAsync(other);
        var page = await browser.NewPageAsync();

        var refused = await Assert.ThrowsAsync<Microsoft.Playwright.PlaywrightException>(
            () => page.GotoAsync(new Uri(_server.BaseAddress, ".well-known/openid-configuration").AbsoluteUri));

        Assert.Contains("ERR_CERT", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_recorder_reports_a_CSP_violation_on_a_page_that_breaks_its_own_policy()
    {
        await using var rp = await RelyingParty.StartAsync(_server);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.GotoAsync(rp.Url(RelyingParty.CspViolationPath));

        // The inline script was blocked, and the browser said so.
        Assert.Equal("CSP violation", await page.TitleAsync());
        var violation = Assert.Single(browser.CspViolations);
        Assert.Contains("inline script", violation.Text, StringComparison.Ordinal);
        Assert.Single(browser.Problems); // counted once, as a violation (not again as a console error)
        Assert.Throws<Xunit.Sdk.TrueException>(browser.AssertNoProblems);
    }

    [Fact]
    public async Task The_recorder_reports_a_console_error_an_uncaught_error_and_a_failed_request_each_once()
    {
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        await page.EvaluateAsync("console.error('deliberate console error')");
        await page.EvaluateAsync("setTimeout(() => { throw new Error('deliberate page error'); })");
        // Nothing listens on port 1 of the loopback: the request fails before any HTTP exchange.
        await Assert.ThrowsAsync<Microsoft.Playwright.PlaywrightException>(() => page.GotoAsync("https://127.0.0.1:1/"));
        await page.WaitForTimeoutAsync(200); // the uncaught error is reported after the timer fires

        Assert.Collection(
            browser.Problems.OrderBy(p => p.Kind),
            p => Assert.Equal((BrowserProblemKind.ConsoleError, true), (p.Kind, p.Text.Contains("deliberate console error", StringComparison.Ordinal))),
            p => Assert.Equal((BrowserProblemKind.PageError, true), (p.Kind, p.Text.Contains("deliberate page error", StringComparison.Ordinal))),
            p => Assert.Equal((BrowserProblemKind.FailedRequest, true), (p.Kind, p.Where == "https://127.0.0.1:1/")));
        Assert.Empty(browser.CspViolations);
    }

    [Fact]
    public async Task The_relying_party_starts_and_its_public_page_answers_without_a_browser_problem()
    {
        await using var rp = await RelyingParty.StartAsync(_server);
        await using var browser = await Browser.LaunchAsync(_server.Certificate);
        var page = await browser.NewPageAsync();

        var response = await page.GotoAsync(rp.Url("/"));

        Assert.NotNull(response);
        Assert.Equal((int)HttpStatusCode.OK, response.Status);
        Assert.StartsWith("https://localhost:", page.Url, StringComparison.Ordinal);
        Assert.Equal("anonymous", await page.Locator("#state").TextContentAsync());
        browser.AssertNoProblems();
        Assert.True(rp.Log.IsEmpty, string.Join('\n', rp.Log));
    }
}
