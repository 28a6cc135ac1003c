using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Accounts;

public sealed class ProfileTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task An_email_change_shows_on_the_next_me_at_once_and_needs_the_current_password()
    {
        var http = fixture.Client;
        var (_, name, tokens) = await http.NewUserAsync("profile");
        using (var before = await http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal($"{name}@example.com", (await before.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("email").GetString());
        }

        using (var wrong = await http.SendAsync(HttpMethod.Patch, "api/me", tokens.AccessToken, JsonContent.Create(new { email = "new@example.com", currentPassword = "not the current password 1" })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        var newEmail = $"{name}-new@example.com";
        using (var ok = await http.SendAsync(HttpMethod.Patch, "api/me", tokens.AccessToken, JsonContent.Create(new { email = newEmail, currentPassword = ClientFlows.Password })))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var after = await http.GetWithTokenAsync("api/me", tokens.AccessToken);
        Assert.Equal(newEmail, (await after.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("email").GetString());
    }
}
