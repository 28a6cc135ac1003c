using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Audit;
using Portcullis.Cli;
using Portcullis.Storage;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Audit;

public sealed partial class AuditTrailTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private readonly HttpClient _http = fixture.Client;

    private async Task<List<JsonElement>> EventsAsync(string query)
    {
        var root = await fixture.AdminTokenAsync();
        using var response = await _http.SendAsync(HttpMethod.Get, $"api/admin/audit?limit=500&{query}", root);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.JsonAsync()).GetProperty("items").EnumerateArray()];
    }

    [Fact]
    public async Task L01_login_success_failure_denial_role_change_and_token_reuse_are_recorded_with_actor_ip_and_trace()
    {
        var (id, name, tokens) = await _http.NewUserAsync("audited");
        using (var wrong = await _http.PasswordGrantAsync(name, "not the right password at all"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        using var denied = await _http.SendAsync(HttpMethod.Get, "api/admin/users", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        var deniedTrace = (await denied.JsonAsync()).GetProperty("traceId").GetString();

        var root = await fixture.AdminTokenAsync();
        using (await _http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/admin", root))
        {
        }

        using (var first = await _http.RefreshAsync(tokens.RefreshToken!))
        using (var reuse = await _http.RefreshAsync(tokens.RefreshToken!))
        {
            Assert.Equal(HttpStatusCode.BadRequest, reuse.StatusCode);
        }

        var mine = await EventsAsync($"actor=user:{id}");
        Assert.Contains(mine, e => e.GetProperty("name").GetString() == "authn_login_success" && e.GetProperty("outcome").GetString() == "success");
        var denial = Assert.Single(mine, e => e.GetProperty("name").GetString() == "authz_fail");
        Assert.Equal("denied", denial.GetProperty("outcome").GetString());
        Assert.Equal("127.0.0.1", denial.GetProperty("clientIp").GetString());
        Assert.Equal(deniedTrace?.Split('-')[1], denial.GetProperty("traceId").GetString());
        Assert.Equal("users:read", denial.GetProperty("details").GetProperty("missingPermission").GetString());

        var aboutMe = await EventsAsync("type=authn_login_fail");
        Assert.Contains(aboutMe, e => e.GetProperty("target").GetString() == $"user:{id}" && e.GetProperty("actor").GetString() == "anonymous");
        var change = Assert.Single(await EventsAsync("type=authz_change"), e => e.GetProperty("target").GetString() == $"user:{id}");
        Assert.Equal($"user:{fixture.AdminId}", change.GetProperty("actor").GetString());
        Assert.Contains(await EventsAsync("type=2004"), e => e.GetProperty("details").GetProperty("user").GetString() == id.ToString());
        Assert.Contains(await EventsAsync("type=user_created"), e => e.GetProperty("target").GetString() == $"user:{id}");
    }

    [Fact]
    public async Task L02_a_failed_login_for_an_unknown_name_keeps_only_a_keyed_hash_and_no_event_holds_a_password_or_token()
    {
        const string TypedPassword = "MyVerySecretPassphraseTypedIntoTheUsernameBox";
        using (await _http.PasswordGrantAsync(TypedPassword, "x-wrong-password-x-wrong"))
        {
        }

        var (_, name, tokens) = await _http.NewUserAsync("secretive");
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var all = await db.AuditEvents.AsNoTracking().ToListAsync();
        var text = JsonSerializer.Serialize(all);
        Assert.DoesNotContain(TypedPassword, text, StringComparison.Ordinal);
        Assert.DoesNotContain(ClientFlows.Password, text, StringComparison.Ordinal);
        Assert.DoesNotContain(tokens.AccessToken, text, StringComparison.Ordinal);
        Assert.DoesNotContain(tokens.RefreshToken!, text, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJ", text, StringComparison.Ordinal);
        // Only the classified redactor's keyed hash of the typed name (Hosting/Redaction.cs), not even a prefix.
        var hashed = "name:" + fixture.Server.Services.GetRequiredService<Microsoft.Extensions.Compliance.Redaction.IRedactorProvider>()
            .GetRedactor(Portcullis.Hosting.PortcullisTaxonomy.Personal).Redact(TypedPassword);
        Assert.Contains(all, e => e.Name == "authn_login_fail" && e.Target == hashed);
        Assert.DoesNotContain(TypedPassword[..6], text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Key_rotation_is_audited_with_the_admin_as_actor_and_the_new_kid_as_target()
    {
        var root = await fixture.AdminTokenAsync();
        using var rotate = await _http.SendAsync(HttpMethod.Post, "api/admin/keys/rotate", root);
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var kid = (await rotate.JsonAsync()).GetProperty("kid").GetString();

        var rotated = Assert.Single(await EventsAsync("type=key_rotated"), e => e.GetProperty("target").GetString() == $"key:{kid}");
        Assert.Equal($"user:{fixture.AdminId}", rotated.GetProperty("actor").GetString());
    }

    [Theory]
    [InlineData("api/admin/audit?actor=a&actor=b", "actor")]
    [InlineData("api/admin/audit/export?type=authn_login_success&type=key_rotated", "type")]
    public async Task V09_the_audit_query_is_an_admin_call_and_refuses_a_repeated_query_key(string path, string key)
    {
        var root = await fixture.AdminTokenAsync();
        using var response = await _http.SendAsync(HttpMethod.Get, path, root);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(key, out _), problem.ToString());
    }

    [Fact]
    public async Task L07_no_route_can_change_or_delete_an_audit_event()
    {
        var audit = fixture.Server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.Contains("audit", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.NotEmpty(audit);
        Assert.All(audit, e => Assert.Equal(["GET"], e.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods));

        var (_, _, user) = await _http.NewUserAsync("reader");
        using var asUser = await _http.SendAsync(HttpMethod.Get, "api/admin/audit", user.AccessToken);
        Assert.Equal(HttpStatusCode.Forbidden, asUser.StatusCode);
        var root = await fixture.AdminTokenAsync();
        foreach (var method in new[] { HttpMethod.Delete, HttpMethod.Put, HttpMethod.Patch, HttpMethod.Post })
        {
            using var response = await _http.SendAsync(method, "api/admin/audit", root, new { });
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        }

        // The CLI: reading commands, and retention (prune, which leaves its own event) as the only removal.
        var help = new StringWriter();
        Assert.Equal(CliApp.Ok, await CliApp.RunAsync(["audit", "--help"], new StringReader(""), help, new StringWriter()));
        var commands = help.ToString().Split("Commands:")[1].Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("  ", StringComparison.Ordinal) && l[2] != ' ') // command names, not wrapped descriptions
            .Select(l => l.Trim().Split(' ')[0]).Order().ToList();
        Assert.Equal(["export", "prune", "tail", "verify"], commands);
    }

    [Fact]
    public async Task The_export_streams_ndjson_oldest_first_and_paging_walks_newest_first()
    {
        for (var i = 0; i < 3; i++)
        {
            using var _ = await _http.PasswordGrantAsync(ClientFlows.UniqueName("pager"), "an event for paging only");
        }

        var root = await fixture.AdminTokenAsync();
        using var export = await _http.SendAsync(HttpMethod.Get, "api/admin/audit/export", root);
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.Equal("application/x-ndjson", export.Content.Headers.ContentType?.MediaType);
        var ids = (await export.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetInt64()).ToList();
        Assert.NotEmpty(ids);
        Assert.Equal(ids.Order(), ids);

        using var page1 = await _http.SendAsync(HttpMethod.Get, "api/admin/audit?limit=2", root);
        var body = await page1.JsonAsync();
        var first = body.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()).ToList();
        Assert.True(first[0] > first[1]);
        using var page2 = await _http.SendAsync(HttpMethod.Get, $"api/admin/audit?limit=2&cursor={body.GetProperty("next").GetString()}", root);
        Assert.True((await page2.JsonAsync()).GetProperty("items").EnumerateArray().All(e => e.GetProperty("id").GetInt64() < first[1]));
    }

    [Fact]
    public async Task A_time_range_pages_newest_first_by_time_with_its_own_cursor_and_a_forged_cursor_is_400()
    {
        var since = DateTimeOffset.UtcNow.AddSeconds(-1);
        for (var i = 0; i < 5; i++)
        {
            using var _ = await _http.PasswordGrantAsync(ClientFlows.UniqueName("ranged"), "an event for ranged paging only");
        }

        var root = await fixture.AdminTokenAsync();
        var range = $"from={Uri.EscapeDataString(since.ToString("O"))}&to={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}";
        var seen = new List<(long Id, DateTimeOffset At)>();
        string? cursor = null;
        for (var pages = 0; pages < 100; pages++)
        {
            using var page = await _http.SendAsync(HttpMethod.Get, $"api/admin/audit?limit=2&{range}{(cursor is null ? "" : "&cursor=" + cursor)}", root);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            var body = await page.JsonAsync();
            seen.AddRange(body.GetProperty("items").EnumerateArray()
                .Select(e => (e.GetProperty("id").GetInt64(), e.GetProperty("timestamp").GetDateTimeOffset())));
            cursor = body.GetProperty("next").ValueKind == JsonValueKind.String ? body.GetProperty("next").GetString() : null;
            if (cursor is null)
            {
                break;
            }
        }

        Assert.Null(cursor);
        Assert.True(seen.Count >= 5);
        Assert.Equal(seen.Count, seen.Select(s => s.Id).Distinct().Count()); // no event twice across pages
        Assert.Equal(seen.OrderByDescending(s => s.At).ThenByDescending(s => s.Id), seen);
        Assert.All(seen, s => Assert.True(s.At >= since));

        foreach (var forged in new[] { "12", "x.1", "1.x", ".5", "-1.5", "99999999999999999999.1" })
        {
            using var bad = await _http.SendAsync(HttpMethod.Get, $"api/admin/audit?{range}&cursor={Uri.EscapeDataString(forged)}", root);
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        }
    }
}

/// <summary>L07 at the database: the application's role cannot change or delete audit rows (PostgreSQL grants).</summary>
public sealed class AuditGrantTests
{
    [Fact]
    public async Task L07_the_application_database_role_cannot_update_or_delete_audit_rows()
    {
        Assert.SkipUnless(TestDatabase.IsPostgres, "SQLite has no database roles; the PostgreSQL pass of the suite runs this.");
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        await http.NewUserAsync("granted");
        await using var connection = new Npgsql.NpgsqlConnection(TestDatabase.ConnectionFor(server.DataDirectory, TestDatabase.AppConnection));
        await connection.OpenAsync();
        foreach (var sql in new[] { "UPDATE \"AuditEvents\" SET \"Outcome\" = 'x'", "DELETE FROM \"AuditEvents\"", "DELETE FROM \"AuditSeals\"", "TRUNCATE \"AuditEvents\"" })
        {
            await using var command = new Npgsql.NpgsqlCommand(sql, connection);
            var denied = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => command.ExecuteNonQueryAsync());
            Assert.Equal("42501", denied.SqlState); // insufficient_privilege
        }

        await using var insert = new Npgsql.NpgsqlCommand("SELECT count(*) FROM \"AuditEvents\"", connection);
        Assert.True((long)(await insert.ExecuteScalarAsync())! > 0);
    }
}

/// <summary>The chain detects an edited, deleted or reordered event, each on its own server.</summary>
public sealed class AuditChainTests
{
    private static async Task<(PortcullisServer Server, PortcullisDb Db, IServiceScope Scope)> SealedServerAsync()
    {
        var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            await http.NewUserAsync("chain");
        }

        var scope = server.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        await AuditSealer.SealAsync(db, DateTimeOffset.UtcNow.AddMinutes(1), default);
        var intact = await server.RunCliAsync(null, "audit", "verify");
        Assert.Equal(CliApp.Ok, intact.ExitCode);
        Assert.StartsWith("OK:", intact.Out, StringComparison.Ordinal);
        return (server, db, scope);
    }

    /// <summary>Tampering needs more rights than the application has on PostgreSQL (L07): use the owner role there.</summary>
    private static async Task TamperAsync(PortcullisServer server, PortcullisDb db, string sql)
    {
        if (TestDatabase.IsPostgres)
        {
            await using var connection = new Npgsql.NpgsqlConnection(TestDatabase.ConnectionFor(server.DataDirectory, TestDatabase.OwnerConnection));
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
        else
        {
#pragma warning disable EF1002 // test-only tampering with values the test itself read from the database
            await db.Database.ExecuteSqlRawAsync(sql);
#pragma warning restore EF1002
        }
    }

    private static async Task AssertTamperedAsync(PortcullisServer server, string expected)
    {
        var result = await server.RunCliAsync(null, "audit", "verify");
        Assert.Equal(CliApp.Failed, result.ExitCode);
        Assert.Contains(expected, result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_edited_event_is_detected_and_located()
    {
        var (server, db, scope) = await SealedServerAsync();
        await using (server)
        using (scope)
        {
            var victim = await db.AuditEvents.OrderBy(e => e.Id).Skip(1).FirstAsync();
            await TamperAsync(server, db, $"UPDATE \"AuditEvents\" SET \"Outcome\" = 'failure' WHERE \"Id\" = {victim.Id}");
            await AssertTamperedAsync(server, $"event {victim.Id}");
        }
    }

    [Fact]
    public async Task A_deleted_event_is_detected()
    {
        var (server, db, scope) = await SealedServerAsync();
        await using (server)
        using (scope)
        {
            var victim = await db.AuditEvents.OrderBy(e => e.Id).Skip(1).FirstAsync();
            await TamperAsync(server, db, $"DELETE FROM \"AuditEvents\" WHERE \"Id\" = {victim.Id}");
            await AssertTamperedAsync(server, "deleted");
        }
    }

    [Fact]
    public async Task A_deleted_seal_is_detected()
    {
        var (server, db, scope) = await SealedServerAsync();
        await using (server)
        using (scope)
        {
            await TamperAsync(server, db, "DELETE FROM \"AuditSeals\" WHERE \"Sequence\" = 2");
            await AssertTamperedAsync(server, "missing");
        }
    }

    [Fact]
    public async Task Reordered_events_are_detected()
    {
        var (server, db, scope) = await SealedServerAsync();
        await using (server)
        using (scope)
        {
            var two = await db.AuditEvents.OrderBy(e => e.Id).Take(2).ToListAsync();
            // Swap the content of two events (same ids, exchanged names and targets).
            await TamperAsync(server, db, $"UPDATE \"AuditEvents\" SET \"Name\" = '{two[1].Name}', \"Target\" = '{two[1].Target}', \"EventId\" = {two[1].EventId} WHERE \"Id\" = {two[0].Id}");
            await TamperAsync(server, db, $"UPDATE \"AuditEvents\" SET \"Name\" = '{two[0].Name}', \"Target\" = '{two[0].Target}', \"EventId\" = {two[0].EventId} WHERE \"Id\" = {two[1].Id}");
            await AssertTamperedAsync(server, "changed");
        }
    }
}

public sealed partial class AuditDocsTests
{
    [Fact]
    public void Docs_audit_events_md_lists_exactly_the_catalogue()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Portcullis.slnx")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var text = File.ReadAllText(Path.Combine(root, "docs", "audit-events.md"));
        foreach (var e in AuditEvents.All)
        {
            Assert.Contains($"| {e.Id} | `{e.Name}` | {e.Description} |", text, StringComparison.Ordinal);
        }

        Assert.Equal(AuditEvents.All.Count, Row().Count(text));
        Assert.Equal(AuditEvents.All.Count, AuditEvents.All.Select(e => e.Id).Distinct().Count());
    }

    [GeneratedRegex(@"^\| \d{4} \| `", RegexOptions.Multiline)]
    private static partial Regex Row();
}
