using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// T02: even when an operator also binds an http:// URL, nothing is served over plain HTTP: no login, no account,
/// no redirect that would teach clients to send credentials in the clear.
/// </summary>
public sealed class HttpsOnlyTests : IAsyncLifetime
{
    private PortcullisServer _server = null!;
    private HttpClient _https = null!;
    private HttpClient _plain = null!;

    public async ValueTask InitializeAsync()
    {
        var httpPort = PortcullisServer.FreePort();
        var httpsPort = PortcullisServer.FreePort();
        _server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["urls"] = $"https://127.0.0.1:{httpsPort};http://127.0.0.1:{httpPort}",
        });
        _https = _server.CreateClient();
        _plain = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}/") };
    }

    public async ValueTask DisposeAsync()
    {
        _plain.Dispose();
        _https.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task T02_a_valid_password_grant_over_http_is_400_and_issues_nothing()
    {
        var username = ClientFlows.UniqueName("t02");
        await _https.RegisterOkAsync(username);
        var before = await CountSessionStateAsync();

        using var response = await _plain.PasswordGrantAsync(username, ClientFlows.Password);

        await AssertHttpsRequiredAsync(response);
        Assert.Equal(before, await CountSessionStateAsync());
        // The same credentials still work over HTTPS: the refusal was about transport, not the account.
        using var overHttps = await _https.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, overHttps.StatusCode);
    }

    [Fact]
    public async Task T02_a_registration_over_http_is_400_and_creates_no_account()
    {
        var username = ClientFlows.UniqueName("t02");
        var usersBefore = await CountUsersAsync();

        using var response = await _plain.RegisterAsync(username);

        await AssertHttpsRequiredAsync(response);
        Assert.Equal(usersBefore, await CountUsersAsync());
        await using var scope = _server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        Assert.False(await db.Users.AnyAsync(u => u.UserName == username));
        Assert.False(await db.Users.AnyAsync(u => u.Email == $"{username}@example.com"));
    }

    [Fact]
    public async Task T02_a_bearer_token_sent_over_http_is_not_accepted()
    {
        var (_, _, tokens) = await _https.NewUserAsync("t02");

        using var response = await _plain.GetWithTokenAsync("api/me", tokens.AccessToken);

        var text = await AssertHttpsRequiredAsync(response);
        Assert.DoesNotContain("username", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("health/live")]
    [InlineData(".well-known/openid-configuration")]
    [InlineData("nope")]
    public async Task T02_anonymous_routes_over_http_are_400_too(string path)
    {
        using var response = await _plain.GetAsync(path);

        await AssertHttpsRequiredAsync(response);
    }

    private static async Task<string> AssertHttpsRequiredAsync(HttpResponseMessage response)
    {
        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "https-required");
        var text = problem.GetRawText();
        Assert.Null(response.Headers.Location);
        Assert.True(response.Headers.ConnectionClose, "The plain-HTTP connection is kept open.");
        // HSTS is meaningless over HTTP (RFC 6797 §7.2) and must not be sent there.
        Assert.False(response.Headers.Contains("Strict-Transport-Security"));
        Assert.DoesNotContain("access_token", text, StringComparison.Ordinal);
        Assert.DoesNotContain("refresh_token", text, StringComparison.Ordinal);
        Assert.DoesNotContain(ClientFlows.Password, text, StringComparison.Ordinal);
        return text;
    }

    private async Task<int> CountUsersAsync()
    {
        await using var scope = _server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PortcullisDb>().Users.CountAsync();
    }

    private async Task<(long Authorizations, long Tokens)> CountSessionStateAsync()
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var authorizations = scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>();
        var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        return (await authorizations.CountAsync(), await tokens.CountAsync());
    }
}
