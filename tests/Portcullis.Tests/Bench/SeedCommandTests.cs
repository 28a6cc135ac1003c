using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Audit;
using Portcullis.Bench;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tests.Tokens;

namespace Portcullis.Tests.Bench;

/// <summary>
/// <c>Portcullis.Bench seed</c> (the scale benchmark's bulk loader), on the provider of the pass: refuses a database
/// with real users unless forced, and what it writes is usable as if made by the application: seeded users log in
/// with the shared password, every seeded audit event is sealed into an intact chain, and the server's own events
/// written afterwards extend that chain (on PostgreSQL: their ids come after the seeded ones).
/// </summary>
public sealed class SeedCommandTests
{
    private const string Password = "seed password for the scale benchmark 2026";

    [Fact]
    public async Task Seed_refuses_real_users_without_force_and_seeds_loginable_users_and_a_sealed_audit_trail()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var (_, realUser, _) = await http.NewUserAsync("real");

        var withoutForce = await server.RunCommandAsync(BenchApp.RunAsync, Password, "seed", "--users", "20", "--password-stdin");
        Assert.Equal(4, withoutForce.ExitCode);
        Assert.Contains("--force", withoutForce.Error, StringComparison.Ordinal);
        using (var nobody = await http.PasswordGrantAsync("seed-0000001", Password))
        {
            Assert.Equal(HttpStatusCode.BadRequest, nobody.StatusCode); // nothing was written
        }

        var seeded = await server.RunCommandAsync(BenchApp.RunAsync, Password, "seed", "--users", "20", "--audit-events", "3000", "--batch", "700", "--password-stdin", "--force");
        Assert.True(seeded.ExitCode == 0, seeded.Error);
        var summary = JsonDocument.Parse(seeded.Out).RootElement;
        Assert.Equal(3000, summary.GetProperty("auditEvents").GetInt64());
        // Progress goes to standard error, as plain lines when not a terminal (issue 20); standard output stays the JSON summary.
        Assert.Contains("seed users: 20 of 20 users (100%)", seeded.Error, StringComparison.Ordinal);
        Assert.Contains("seed audit events: 3,000 of 3,000 events (100%)", seeded.Error, StringComparison.Ordinal);
        Assert.StartsWith("user:", summary.GetProperty("sampleActor").GetString(), StringComparison.Ordinal);

        // A seeded user logs in with the shared password and can call /api/me; the real user is untouched.
        var tokens = await http.LoginAsync("seed-0000020", Password);
        using (var me = await http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            Assert.Equal("seed-0000020", JsonDocument.Parse(await me.Content.ReadAsStringAsync()).RootElement.GetProperty("username").GetString());
        }

        using (var wrong = await http.PasswordGrantAsync("seed-0000001", "not the seed password at all 123"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        Assert.NotNull((await http.LoginAsync(realUser)).AccessToken);

        // The seeded ids are the ones reported, and the server's logins since got ids after them (PostgreSQL: the
        // identity sequence moved past the seeded ids, so no insert of the server's collided with one).
        var (first, last) = (summary.GetProperty("firstEventId").GetInt64(), summary.GetProperty("lastEventId").GetInt64());
        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            Assert.Equal(3000, await db.AuditEvents.CountAsync(e => e.Id >= first && e.Id <= last));
            Assert.True(await db.AuditEvents.CountAsync(e => e.Id > last && e.EventId == AuditEvents.LoginSucceeded.Id) >= 2);
        }

        // The chain, seeded events included, verifies.
        var verify = await server.RunCliAsync(null, "audit", "verify");
        Assert.True(verify.ExitCode == 0, verify.Out + verify.Error);
        Assert.Contains("intact", verify.Out, StringComparison.Ordinal);
    }
}
