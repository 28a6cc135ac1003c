using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// The browser session's idle and absolute lifetimes (<c>SignIn:IdleLifetime</c> 5 minutes and
/// <c>SignIn:AbsoluteLifetime</c> 12 minutes here), on fake time: use keeps a session alive only until its absolute end.
/// </summary>
public sealed class BrowserSessionLifetimeTests
{
    private static async Task<(PortcullisServer Server, FakeTimeProvider Time, string Username)> StartAsync()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?> { ["SignIn:IdleLifetime"] = "00:05:00", ["SignIn:AbsoluteLifetime"] = "00:12:00" },
            services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(time);
            });
        using var http = server.CreateClient();
        var username = ClientFlows.UniqueName("life");
        await http.RegisterOkAsync(username);
        return (server, time, username);
    }

    private static async Task SignInAsync(BrowserFlow browser, string username)
    {
        using var response = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password });
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
    }

    private static async Task<bool> SignedInAsync(BrowserFlow browser)
    {
        using var account = await browser.GetAsync("/account");
        return account.StatusCode switch
        {
            HttpStatusCode.OK => true,
            HttpStatusCode.Found when account.Headers.Location!.OriginalString.StartsWith("/signin", StringComparison.Ordinal) => false,
            var other => throw new InvalidOperationException($"/account answered {other}"),
        };
    }

    [Fact]
    public async Task A_session_unused_for_its_idle_lifetime_ends()
    {
        var (server, time, username) = await StartAsync();
        await using var _ = server;
        using var browser = new BrowserFlow(server);
        await SignInAsync(browser, username);

        time.Advance(TimeSpan.FromMinutes(4));
        Assert.True(await SignedInAsync(browser));
        time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(30));
        Assert.False(await SignedInAsync(browser));
    }

    [Fact]
    public async Task A_session_in_use_still_ends_at_its_absolute_lifetime()
    {
        var (server, time, username) = await StartAsync();
        await using var _ = server;
        using var browser = new BrowserFlow(server);
        await SignInAsync(browser, username);

        for (var minute = 3; minute <= 9; minute += 3)
        {
            time.Advance(TimeSpan.FromMinutes(3));
            Assert.True(await SignedInAsync(browser), $"at {minute} minutes");
        }

        time.Advance(TimeSpan.FromMinutes(3) + TimeSpan.FromSeconds(30)); // 12.5 minutes after sign-in, used 3 minutes ago
        Assert.False(await SignedInAsync(browser));
    }
}
