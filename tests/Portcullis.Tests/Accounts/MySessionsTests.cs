using System.Net;
using System.Text.Json;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// <c>DELETE /api/me/sessions/{id}</c> is the user's own act and is audited as such; the admin API's ending of a
/// session stays an operator's act. (Both once went through the admin code and were both "session_end_by_admin".)
/// </summary>
public sealed class MySessionsTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private async Task<List<JsonElement>> EventsAsync(string type)
    {
        var root = await fixture.AdminTokenAsync();
        using var response = await _http.SendAsync(HttpMethod.Get, $"api/admin/audit?limit=500&type={type}", root);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.JsonAsync()).GetProperty("items").EnumerateArray()];
    }

    private async Task<string> OtherSessionAsync(string accessToken)
    {
        using var list = await _http.SendAsync(HttpMethod.Get, "api/me/sessions", accessToken);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        return (await list.JsonAsync()).EnumerateArray().Single(s => !s.GetProperty("current").GetBoolean()).GetProperty("id").GetString()!;
    }

    private static bool About(JsonElement e, string session) => e.GetProperty("target").GetString() == $"session:{session}";

    [Fact]
    public async Task A_user_ending_their_own_session_is_audited_as_session_end_with_the_user_as_actor()
    {
        var (id, name, _) = await _http.NewUserAsync("selfend");
        var second = await _http.LoginAsync(name);
        var other = await OtherSessionAsync(second.AccessToken);

        using var end = await _http.SendAsync(HttpMethod.Delete, $"api/me/sessions/{other}", second.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, end.StatusCode);

        var ended = Assert.Single(await EventsAsync("session_end"), e => About(e, other));
        Assert.Equal(3005, ended.GetProperty("eventId").GetInt32());
        Assert.Equal($"user:{id}", ended.GetProperty("actor").GetString());
        Assert.Equal("success", ended.GetProperty("outcome").GetString());
        Assert.DoesNotContain(await EventsAsync("session_end_by_admin"), e => About(e, other));
    }

    [Fact]
    public async Task An_operator_ending_a_users_session_is_still_audited_as_session_end_by_admin()
    {
        var (id, name, _) = await _http.NewUserAsync("adminend");
        var second = await _http.LoginAsync(name);
        var other = await OtherSessionAsync(second.AccessToken);
        var root = await fixture.AdminTokenAsync();

        using var end = await _http.SendAsync(HttpMethod.Delete, $"api/admin/users/{id}/sessions/{other}", root);
        Assert.Equal(HttpStatusCode.NoContent, end.StatusCode);

        var ended = Assert.Single(await EventsAsync("session_end_by_admin"), e => About(e, other));
        Assert.Equal(4007, ended.GetProperty("eventId").GetInt32());
        Assert.Equal($"user:{fixture.AdminId}", ended.GetProperty("actor").GetString());
        Assert.Equal(id.ToString(), ended.GetProperty("details").GetProperty("user").GetString());
        Assert.DoesNotContain(await EventsAsync("session_end"), e => About(e, other));
    }
}
