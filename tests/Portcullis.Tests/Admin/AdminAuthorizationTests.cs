using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Admin;

public sealed class AdminAuthorizationTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private async Task<JsonElement> UserAsync(Guid id, string adminToken)
    {
        using var response = await _http.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", adminToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    [Fact]
    public async Task Z02_a_user_gets_403_on_every_admin_function_and_nothing_changes()
    {
        var (aId, _, a) = await _http.NewUserAsync("alice");
        var (bId, bName, _) = await _http.NewUserAsync("bob");
        var admin = await fixture.AdminTokenAsync();

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, "api/admin/users"),
            (HttpMethod.Put, $"api/admin/users/{aId}/roles/admin"),
            (HttpMethod.Post, $"api/admin/users/{bId}/disable"),
            (HttpMethod.Delete, $"api/admin/users/{bId}"),
        })
        {
            using var response = await _http.SendAsync(method, path, a.AccessToken);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.JsonAsync();
            Assert.Equal(403, problem.GetProperty("status").GetInt32());
            Assert.True(problem.TryGetProperty("missingPermission", out _));
            Assert.DoesNotContain(bName, problem.GetRawText(), StringComparison.Ordinal);
        }

        Assert.Equal(["user"], (await UserAsync(aId, admin)).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.False((await UserAsync(bId, admin)).GetProperty("disabled").GetBoolean());
    }

    [Fact]
    public async Task Z07_the_last_admin_cannot_be_demoted_disabled_or_deleted_and_a_user_cannot_set_their_own_role()
    {
        var admin = await fixture.AdminTokenAsync();
        foreach (var (method, path) in new[]
        {
            (HttpMethod.Delete, $"api/admin/users/{fixture.AdminId}/roles/admin"),
            (HttpMethod.Post, $"api/admin/users/{fixture.AdminId}/disable"),
            (HttpMethod.Delete, $"api/admin/users/{fixture.AdminId}"),
        })
        {
            using var response = await _http.SendAsync(method, path, admin);
            Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        }

        Assert.Contains("admin", (await UserAsync(fixture.AdminId, admin)).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));

        var (aId, aName, a) = await _http.NewUserAsync("mallory");
        using var patch = await _http.SendAsync(HttpMethod.Patch, "api/me", a.AccessToken,
            new { email = "m@example.com", currentPassword = ClientFlows.Password, role = "admin" });
        Assert.Equal(HttpStatusCode.BadRequest, patch.StatusCode);
        var fresh = await _http.LoginAsync(aName);
        using var me = await _http.GetWithTokenAsync("api/me", fresh.AccessToken);
        Assert.Equal(["user"], (await me.JsonAsync()).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["user"], (await UserAsync(aId, admin)).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Fact]
    public async Task J16_a_demoted_admin_loses_admin_access_on_the_next_request_with_the_same_token()
    {
        var root = await fixture.AdminTokenAsync();
        var (id, name, _) = await _http.NewUserAsync("second");
        using (var grant = await _http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/admin", root))
        {
            Assert.Equal(HttpStatusCode.NoContent, grant.StatusCode);
        }

        var second = (await _http.LoginAsync(name)).AccessToken;
        using (var before = await _http.SendAsync(HttpMethod.Get, "api/admin/users", second))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        using (var demote = await _http.SendAsync(HttpMethod.Delete, $"api/admin/users/{id}/roles/admin", root))
        {
            Assert.Equal(HttpStatusCode.NoContent, demote.StatusCode);
        }

        using var after = await _http.SendAsync(HttpMethod.Get, "api/admin/users", second);
        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
    }

    [Fact]
    public async Task A_role_permission_change_applies_to_its_holders_at_once()
    {
        var root = await fixture.AdminTokenAsync();
        using (await _http.SendAsync(HttpMethod.Post, "api/admin/roles", root, new { name = "auditor", permissions = new[] { "users:read" } }))
        {
        }

        var (id, name, _) = await _http.NewUserAsync("auditor");
        using (await _http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/auditor", root))
        {
        }

        var token = (await _http.LoginAsync(name)).AccessToken;
        using (var allowed = await _http.SendAsync(HttpMethod.Get, "api/admin/users?limit=1", token))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        using (var update = await _http.SendAsync(HttpMethod.Put, "api/admin/roles/auditor", root, new { permissions = Array.Empty<string>() }))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }

        using var denied = await _http.SendAsync(HttpMethod.Get, "api/admin/users?limit=1", token);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal("users:read", (await denied.JsonAsync()).GetProperty("missingPermission").GetString());
    }

    [Fact]
    public async Task Z04_a_user_cannot_see_or_end_another_users_session_and_gets_the_same_404_as_for_a_random_id()
    {
        var (_, _, a) = await _http.NewUserAsync("alice");
        var (_, _, b) = await _http.NewUserAsync("bob");
        using var list = await _http.GetWithTokenAsync("api/me/sessions", b.AccessToken);
        var bSession = (await list.JsonAsync()).EnumerateArray().Single().GetProperty("id").GetString()!;

        using var foreign = await _http.SendAsync(HttpMethod.Delete, $"api/me/sessions/{bSession}", a.AccessToken);
        using var random = await _http.SendAsync(HttpMethod.Delete, $"api/me/sessions/{Guid.NewGuid()}", a.AccessToken);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, random.StatusCode);
        var foreignBody = (await foreign.JsonAsync()).EnumerateObject().Where(p => p.Name != "traceId").Select(p => p.ToString());
        var randomBody = (await random.JsonAsync()).EnumerateObject().Where(p => p.Name != "traceId").Select(p => p.ToString());
        Assert.Equal(randomBody, foreignBody);

        using var mine = await _http.GetWithTokenAsync("api/me/sessions", a.AccessToken);
        Assert.DoesNotContain(bSession, await mine.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var stillB = await _http.GetWithTokenAsync("api/me", b.AccessToken);
        Assert.Equal(HttpStatusCode.OK, stillB.StatusCode);
        using var refreshB = await _http.RefreshAsync(b.RefreshToken!);
        Assert.Equal(HttpStatusCode.OK, refreshB.StatusCode);
    }

    [Fact]
    public async Task A_user_ends_their_own_other_session_by_id()
    {
        var (_, name, first) = await _http.NewUserAsync("multi");
        var second = await _http.LoginAsync(name);
        using var list = await _http.GetWithTokenAsync("api/me/sessions", second.AccessToken);
        var sessions = (await list.JsonAsync()).EnumerateArray().ToList();
        Assert.Equal(2, sessions.Count);
        var other = sessions.Single(s => !s.GetProperty("current").GetBoolean()).GetProperty("id").GetString();

        using var end = await _http.SendAsync(HttpMethod.Delete, $"api/me/sessions/{other}", second.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, end.StatusCode);
        using var firstMe = await _http.GetWithTokenAsync("api/me", first.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, firstMe.StatusCode);
        using var secondMe = await _http.GetWithTokenAsync("api/me", second.AccessToken);
        Assert.Equal(HttpStatusCode.OK, secondMe.StatusCode);
    }

    [Fact]
    public async Task S05_admin_revoke_sessions_kills_every_refresh_and_access_token_of_the_user()
    {
        var (id, name, first) = await _http.NewUserAsync("victim");
        var second = await _http.LoginAsync(name);
        var root = await fixture.AdminTokenAsync();

        using (var sessions = await _http.SendAsync(HttpMethod.Get, $"api/admin/users/{id}/sessions", root))
        {
            Assert.Equal(2, (await sessions.JsonAsync()).GetArrayLength());
        }

        using (var revoke = await _http.SendAsync(HttpMethod.Delete, $"api/admin/users/{id}/sessions", root))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        foreach (var tokens in new[] { first, second })
        {
            using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
            using var refresh = await _http.RefreshAsync(tokens.RefreshToken!);
            Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
        }

        // The account itself still works.
        Assert.NotNull((await _http.LoginAsync(name)).AccessToken);
    }

    [Fact]
    public async Task J14_admin_disable_and_delete_kill_live_tokens_at_once()
    {
        var root = await fixture.AdminTokenAsync();
        var (bId, bName, b) = await _http.NewUserAsync("bob");
        var (b2Id, _, b2) = await _http.NewUserAsync("bob2");

        using (await _http.SendAsync(HttpMethod.Post, $"api/admin/users/{bId}/disable", root))
        using (var me = await _http.GetWithTokenAsync("api/me", b.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        using (var login = await _http.PasswordGrantAsync(bName, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.BadRequest, login.StatusCode);
        }

        using (await _http.SendAsync(HttpMethod.Delete, $"api/admin/users/{b2Id}", root))
        using (var me2 = await _http.GetWithTokenAsync("api/me", b2.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me2.StatusCode);
        }

        using var gone = await _http.SendAsync(HttpMethod.Get, $"api/admin/users/{b2Id}", root);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Theory]
    [InlineData("GET", "API/ADMIN/USERS")]
    [InlineData("GET", "api/admin/users/")]
    [InlineData("GET", "api//admin/users")]
    [InlineData("GET", "api/./admin/users")]
    [InlineData("GET", "api/x/../admin/users")]
    [InlineData("GET", "api/admin/%75sers")]
    [InlineData("GET", "api/%61dmin/users")]
    [InlineData("GET", "api/admin;x=1/users")]
    [InlineData("GET", "api/admin/users;jsessionid=1")]
    [InlineData("HEAD", "api/admin/users")]
    [InlineData("GET", "api/admin/users?_method=GET")]
    public async Task Path_variants_of_an_admin_route_never_return_data_to_a_non_admin(string method, string path)
    {
        var (_, _, a) = await _http.NewUserAsync("probe");
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(fixture.Server.BaseAddress, path).ToString().Replace("/./", "/./", StringComparison.Ordinal));
        request.Headers.TryAddWithoutValidation("X-HTTP-Method-Override", "GET");
        using var response = await _http.SendWithTokenAsync(request, a.AccessToken);

        Assert.True(response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed,
            $"{method} {path}: {(int)response.StatusCode}");
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("\"items\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.AdminName, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task H05_method_override_headers_do_not_turn_a_post_into_a_delete()
    {
        var root = await fixture.AdminTokenAsync();
        var (id, _, _) = await _http.NewUserAsync("keepme");
        foreach (var header in new[] { "X-HTTP-Method-Override", "X-Method-Override" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"api/admin/users/{id}");
            request.Headers.TryAddWithoutValidation(header, "DELETE");
            using var response = await _http.SendWithTokenAsync(request, root);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        }

        using var query = await _http.SendAsync(HttpMethod.Post, $"api/admin/users/{id}?_method=DELETE", root);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, query.StatusCode);
        using var still = await _http.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", root);
        Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    [Theory]
    [InlineData("limit=0")]
    [InlineData("limit=-1")]
    [InlineData("limit=201")]
    [InlineData("limit=10.5")]
    [InlineData("limit=9223372036854775808")]
    [InlineData("limit=10&limit=1000")]
    [InlineData("cursor=%%%")]
    public async Task V09_V14_bad_paging_parameters_are_400(string query)
    {
        var root = await fixture.AdminTokenAsync();
        using var response = await _http.SendAsync(HttpMethod.Get, $"api/admin/users?{query}", root);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Listing_users_pages_with_a_cursor_and_shows_no_secrets()
    {
        var root = await fixture.AdminTokenAsync();
        for (var i = 0; i < 3; i++)
        {
            await _http.NewUserAsync("pager");
        }

        var seen = new HashSet<string>();
        string? cursor = null;
        for (var page = 0; page < 100; page++)
        {
            using var response = await _http.SendAsync(HttpMethod.Get, $"api/admin/users?search=pager&limit=2{(cursor is null ? "" : "&cursor=" + cursor)}", root);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.JsonAsync();
            Assert.DoesNotMatch("(?i)hash|stamp|salt|password", body.GetRawText());
            foreach (var item in body.GetProperty("items").EnumerateArray())
            {
                Assert.True(seen.Add(item.GetProperty("username").GetString()!));
            }

            cursor = body.GetProperty("next").GetString();
            if (cursor is null)
            {
                break;
            }
        }

        Assert.True(seen.Count >= 3);
    }
}

public sealed class RequirePasswordChangeTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task An_admin_forces_a_password_change_sessions_end_and_login_waits_for_a_new_password()
    {
        var (id, name, tokens) = await _http.NewUserAsync("forced");
        var root = await fixture.AdminTokenAsync();
        using (var force = await _http.SendAsync(HttpMethod.Post, $"api/admin/users/{id}/require-password-change", root))
        {
            Assert.Equal(HttpStatusCode.NoContent, force.StatusCode);
        }

        using (var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        }

        using (var login = await _http.PasswordGrantAsync(name, ClientFlows.Password))
        {
            Assert.Equal(HttpStatusCode.BadRequest, login.StatusCode);
            Assert.Contains("/api/accounts/password", await login.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // A wrong password learns nothing about the flag: the ordinary failed-login answer.
        using (var wrong = await _http.PasswordGrantAsync(name, "not the password at all 123"))
        {
            Assert.DoesNotContain("/api/accounts/password", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        const string NewPassword = "a brand new and long passphrase 9182";
        using (var badCurrent = await _http.SendAsync(HttpMethod.Post, "api/accounts/password", null,
            new { username = name, currentPassword = "not the password at all 123", newPassword = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badCurrent.StatusCode);
        }

        using (var unknown = await _http.SendAsync(HttpMethod.Post, "api/accounts/password", null,
            new { username = ClientFlows.UniqueName("nobody"), currentPassword = "not the password at all 123", newPassword = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        }

        using (var change = await _http.SendAsync(HttpMethod.Post, "api/accounts/password", null,
            new { username = name, currentPassword = ClientFlows.Password, newPassword = NewPassword }))
        {
            Assert.Equal(HttpStatusCode.NoContent, change.StatusCode);
        }

        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(name, NewPassword)).AccessToken));
        using var old = await _http.PasswordGrantAsync(name, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.BadRequest, old.StatusCode);
    }
}
