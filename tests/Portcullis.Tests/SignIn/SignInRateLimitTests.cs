using System.Net;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>The sign-in and sign-up pages share the token endpoint's per-IP <c>credentials</c> limit.</summary>
public sealed class SignInRateLimitTests
{
    [Fact]
    public async Task The_sign_in_page_counts_against_the_credentials_limit_and_answers_429_over_it()
    {
        await using var server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["RateLimits:Policies:credentials:Algorithm"] = "FixedWindow",
            ["RateLimits:Policies:credentials:PermitLimit"] = "4",
            ["RateLimits:Policies:credentials:Window"] = "00:10:00", // no new window inside the test
        });
        using var browser = new BrowserFlow(server);
        for (var i = 0; i < 2; i++)
        {
            using var page = await browser.GetAsync("/signin");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }

        using (var signup = await browser.GetAsync("/signup"))
        {
            Assert.Equal(HttpStatusCode.OK, signup.StatusCode);
        }

        using var html = await browser.GetAsync("/signin");
        Assert.Equal(HttpStatusCode.OK, html.StatusCode);
        using var limited = await browser.PostFormAsync("/signin", await html.Content.ReadAsStringAsync(),
            new Dictionary<string, string> { ["Username"] = "someone", ["Password"] = "a long and wrong passphrase 1" });
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.NotNull(limited.Headers.RetryAfter);
        Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
    }
}
