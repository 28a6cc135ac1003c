using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Tokens;

public sealed class PasswordGrantTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task Register_login_and_me_work_end_to_end()
    {
        var (id, username, tokens) = await _http.NewUserAsync();

        using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var body = await me.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(id, body.GetProperty("id").GetGuid());
        Assert.Equal(username, body.GetProperty("username").GetString());
        Assert.Equal(["user"], body.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.NotNull(tokens.RefreshToken);
        Assert.InRange(tokens.ExpiresIn, 500, 600);
    }
}
