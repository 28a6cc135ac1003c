using System.Net;
using System.Text;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// <c>POST /api/me/password</c> (S05 part, AUTH-04/05/10): needs the current password, follows the password policy,
/// and a change ends every session.
/// </summary>
public sealed class ChangePasswordTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string NewPassword = "violet otters paddle past midnight 2291";
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Theory]
    [InlineData("""{"currentPassword":"wrong-but-long-enough-passphrase","newPassword":"NEW"}""")]
    [InlineData("""{"currentPassword":"CURRENT ","newPassword":"NEW"}""")]
    [InlineData("""{"currentPassword":"","newPassword":"NEW"}""")]
    [InlineData("""{"currentPassword":null,"newPassword":"NEW"}""")]
    [InlineData("""{"newPassword":"NEW"}""")]
    public async Task S05_a_wrong_or_missing_current_password_is_400_naming_currentPassword_and_changes_nothing(string template)
    {
        var (_, username, tokens) = await _http.NewUserAsync("chg");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;
        var body = template.Replace("CURRENT", ClientFlows.Password, StringComparison.Ordinal).Replace("NEW", NewPassword, StringComparison.Ordinal);

        using var response = await _http.PostRawAsync("api/me/password", body, bearer: tokens.AccessToken);

        await AssertInvalidFieldAsync(response, "currentPassword", ClientFlows.Password, NewPassword, "wrong-but-long-enough-passphrase");
        await AssertUnchangedAsync(username, hashBefore, tokens);
    }

    [Theory]
    [InlineData("qwertyuiopasdfgh")]
    [InlineData("short")]
    [InlineData("portcullis rocks all day long")]
    [InlineData("")]
    public async Task S05_a_new_password_against_the_policy_is_400_naming_newPassword_and_changes_nothing(string newPassword)
    {
        var (_, username, tokens) = await _http.NewUserAsync("chg");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;

        using var response = await _http.PostWithTokenAsync("api/me/password", tokens.AccessToken, new { currentPassword = ClientFlows.Password, newPassword });

        await AssertInvalidFieldAsync(response, "newPassword", ClientFlows.Password, newPassword);
        await AssertUnchangedAsync(username, hashBefore, tokens);
    }

    [Fact]
    public async Task S05_a_new_password_containing_the_username_is_400_naming_newPassword()
    {
        var (_, username, tokens) = await _http.NewUserAsync("chg");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;
        var newPassword = $"i am {username.ToUpperInvariant()} hello";

        using var response = await _http.PostWithTokenAsync("api/me/password", tokens.AccessToken, new { currentPassword = ClientFlows.Password, newPassword });

        await AssertInvalidFieldAsync(response, "newPassword", ClientFlows.Password, newPassword);
        await AssertUnchangedAsync(username, hashBefore, tokens);
    }

    [Fact]
    public async Task S05_a_successful_change_is_204_and_ends_every_session()
    {
        var (_, username, first) = await _http.NewUserAsync("chg");
        var second = await _http.LoginAsync(username);

        using (var response = await _http.PostWithTokenAsync("api/me/password", first.AccessToken, new { currentPassword = ClientFlows.Password, newPassword = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }

        using (var oldLogin = await _http.PasswordGrantAsync(username, ClientFlows.Password))
        {
            await Refusal.AssertInvalidGrantAsync(oldLogin);
        }

        foreach (var session in new[] { first, second })
        {
            using var me = await _http.GetWithTokenAsync("api/me", session.AccessToken);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            using var refresh = await _http.RefreshAsync(session.RefreshToken!);
            await Refusal.AssertInvalidGrantAsync(refresh);
        }

        var fresh = await _http.LoginAsync(username, NewPassword);
        using var meAgain = await _http.GetWithTokenAsync("api/me", fresh.AccessToken);
        Assert.Equal(HttpStatusCode.OK, meAgain.StatusCode);
        Assert.StartsWith("$argon2id$", (await Server.FindUserAsync(username))!.PasswordHash, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    [InlineData("application/json; charset=utf-16")]
    public async Task V04_password_change_with_a_content_type_other_than_json_utf8_is_415_and_changes_nothing(string? contentType)
    {
        var (_, username, tokens) = await _http.NewUserAsync("chg");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;
        var json = JsonSerializer.Serialize(new { currentPassword = ClientFlows.Password, newPassword = NewPassword });
        var body = contentType switch
        {
            "application/x-www-form-urlencoded" => Encoding.UTF8.GetBytes(
                $"currentPassword={Uri.EscapeDataString(ClientFlows.Password)}&newPassword={Uri.EscapeDataString(NewPassword)}"),
            "application/json; charset=utf-16" => Encoding.Unicode.GetBytes(json),
            _ => Encoding.UTF8.GetBytes(json),
        };

        using var response = await _http.PostRawAsync("api/me/password", body, contentType, tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, secrets: [ClientFlows.Password, NewPassword]);
        await AssertUnchangedAsync(username, hashBefore, tokens);
    }

    [Theory]
    [InlineData("""{"currentPassword":"CURRENT","newPassword":"NEW","role":"admin"}""")]
    [InlineData("""{"currentPassword":"CURRENT","newPassword":"NEW"}}""")]
    [InlineData("""{"currentPassword":"CURRENT","newPassword":"NEW","newPassword":"NEW2"}""")]
    [InlineData("""{"currentPassword":"CURRENT","newPassword":12345678901234567}""")]
    [InlineData("")]
    public async Task V07_a_malformed_password_change_body_is_400_and_changes_nothing(string template)
    {
        var (_, username, tokens) = await _http.NewUserAsync("chg");
        var hashBefore = (await Server.FindUserAsync(username))!.PasswordHash;
        var body = template.Replace("CURRENT", ClientFlows.Password, StringComparison.Ordinal)
            .Replace("NEW2", NewPassword + "2", StringComparison.Ordinal).Replace("NEW", NewPassword, StringComparison.Ordinal);

        using var response = await _http.PostRawAsync("api/me/password", body, bearer: tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password, NewPassword]);
        await AssertUnchangedAsync(username, hashBefore, tokens);
    }

    [Fact]
    public async Task S05_a_password_change_without_a_token_is_401()
    {
        using var response = await _http.PostRawAsync("api/me/password", JsonSerializer.Serialize(new { currentPassword = ClientFlows.Password, newPassword = NewPassword }));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    /// <summary>The stored hash is the same, the old password still logs in and the session is still alive.</summary>
    private async Task AssertUnchangedAsync(string username, string? hashBefore, ClientFlows.Tokens tokens)
    {
        Assert.Equal(hashBefore, (await Server.FindUserAsync(username))!.PasswordHash);
        using (var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        }

        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username)).AccessToken));
        using var newLogin = await _http.PasswordGrantAsync(username, NewPassword);
        await Refusal.AssertInvalidGrantAsync(newLogin);
    }
}
