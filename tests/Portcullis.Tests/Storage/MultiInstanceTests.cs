using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Audit;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Storage;

/// <summary>
/// Two Portcullis instances on ONE database (the same SQLite file, or the same PostgreSQL database in the PostgreSQL
/// pass of scripts/test.sh), changing the same things at the same time. In-process locks cannot serialize these: the
/// guarantees have to come from the database (Storage/StoreLocks.cs).
/// </summary>
public sealed class MultiInstanceTests
{
    /// <summary>Server A (with a first administrator made by the CLI) and server B on A's data directory and database.</summary>
    private sealed class TwoInstances : IAsyncDisposable
    {
        public PortcullisServer A { get; private init; } = null!;

        public PortcullisServer B { get; private init; } = null!;

        public string RootName { get; } = ClientFlows.UniqueName("root");

        public Guid RootId { get; private set; }

        public static async Task<TwoInstances> StartAsync(Dictionary<string, string?>? settings = null)
        {
            // One issuer for both, as behind a load balancer: a token from either instance is valid at the other.
            settings ??= [];
            settings["Tokens:Issuer"] = "https://portcullis.test/";
            var a = await PortcullisServer.StartAsync(settings);
            var two = new TwoInstances { A = a, B = await PortcullisServer.StartAsync(settings, dataDirectory: a.DataDirectory) };
            var created = await a.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", two.RootName, "--password-stdin", "--json");
            Assert.Equal(0, created.ExitCode);
            two.RootId = JsonDocument.Parse(created.Out).RootElement.GetProperty("id").GetGuid();
            return two;
        }

        public PortcullisServer this[int i] => i % 2 == 0 ? A : B;

        public async ValueTask DisposeAsync()
        {
            await B.StopKeepingDataAsync(); // A owns the directory and the database
            await A.DisposeAsync();
        }
    }

    /// <summary>Sends all requests at once, each on its own connection, half to each instance.</summary>
    private static async Task<(HttpStatusCode Status, HttpResponseMessage Response)[]> InParallelAsync(
        TwoInstances two, List<(int Server, HttpMethod Method, string Path, object? Body)> requests, string token)
    {
        var clients = requests.Select(r => two[r.Server].CreateClient()).ToList();
        try
        {
            using var start = new SemaphoreSlim(0, requests.Count);
            var sent = requests.Select(async (r, i) =>
            {
                await start.WaitAsync();
                var response = await clients[i].SendAsync(r.Method, r.Path, token, r.Body);
                await response.Content.LoadIntoBufferAsync();
                return (response.StatusCode, response);
            }).ToList();
            start.Release(requests.Count);
            return await Task.WhenAll(sent);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>An operator who may manage users, but is no administrator: their token stays valid throughout.</summary>
    private static async Task<string> OperatorTokenAsync(TwoInstances two, HttpClient http, string rootToken)
    {
        var role = ClientFlows.UniqueName("ops");
        using (var created = await http.SendAsync(HttpMethod.Post, "api/admin/roles", rootToken, new { name = role, permissions = new[] { "users:read", "users:write" } }))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var (id, name, _) = await http.NewUserAsync("operator");
        using (var assigned = await http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/{role}", rootToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, assigned.StatusCode);
        }

        // Logged in at the other instance: it sees the role the first one granted.
        using var viaB = two.B.CreateClient();
        return (await viaB.LoginAsync(name)).AccessToken;
    }

    private static async Task<List<AuditEvent>> AuditAsync(PortcullisServer server, string name)
    {
        using var scope = server.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        return await db.AuditEvents.AsNoTracking().Where(e => e.Name == name).OrderBy(e => e.Id).ToListAsync();
    }

    [Fact]
    public async Task Z07_parallel_demotions_and_disables_of_every_admin_on_two_instances_leave_exactly_one_enabled_admin()
    {
        await using var two = await TwoInstances.StartAsync();
        using var http = two.A.CreateClient();
        var rootToken = (await http.LoginAsync(two.RootName)).AccessToken;
        var operatorToken = await OperatorTokenAsync(two, http, rootToken);

        var admins = new List<Guid> { two.RootId };
        for (var i = 0; i < 3; i++)
        {
            var (id, _, _) = await http.NewUserAsync("admin");
            using var promoted = await http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/admin", rootToken);
            Assert.Equal(HttpStatusCode.NoContent, promoted.StatusCode);
            admins.Add(id);
        }

        // Every admin is demoted and disabled, through both instances, all at once: 16 requests.
        List<(int Server, HttpMethod Method, string Path, object? Body)> requests =
        [
            .. from id in admins
               from server in new[] { 0, 1 }
               from demote in new[] { true, false }
               select (server, demote ? HttpMethod.Delete : HttpMethod.Post,
                   demote ? $"api/admin/users/{id}/roles/admin" : $"api/admin/users/{id}/disable", (object?)null),
        ];
        var answers = await InParallelAsync(two, requests, operatorToken);

        // The final state, read back through the other instance.
        using var viaB = two.B.CreateClient();
        var state = new Dictionary<Guid, (bool Admin, bool Disabled)>();
        foreach (var id in admins)
        {
            using var user = await viaB.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", operatorToken);
            var body = await user.JsonAsync();
            state[id] = (body.GetProperty("roles").EnumerateArray().Any(r => r.GetString() == "admin"), body.GetProperty("disabled").GetBoolean());
        }

        // Exactly one enabled administrator is left (the answers, for the failure message).
        var summary = string.Join('\n', requests.Select((r, i) => $"{r.Server} {r.Method} {r.Path} {(int)answers[i].Status}"));
        Assert.True(admins.Count(id => state[id] is (true, false)) == 1, summary);
        var survivor = Assert.Single(admins, id => state[id] is (true, false));
        var removed = await AuditAsync(two.A, AuditEvents.RoleRemoved.Name);
        var disabled = await AuditAsync(two.B, AuditEvents.UserDisabled.Name);
        for (var i = 0; i < requests.Count; i++)
        {
            var (status, response) = answers[i];
            var target = Guid.Parse(requests[i].Path.Split('/')[3]);
            if (target == survivor)
            {
                // Only the last enabled administrator is refused, each time, with a problem+json 409.
                await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Conflict);
            }
            else
            {
                Assert.True(status == HttpStatusCode.NoContent, $"{requests[i].Method} {requests[i].Path}: {(int)status} {await response.Content.ReadAsStringAsync()}\n{summary}");
            }

            response.Dispose();
        }

        // The audit shows exactly the changes that happened: one removal per demoted admin, one "disabled" per
        // disable that was carried out, nothing for the refused ones.
        foreach (var id in admins)
        {
            Assert.Equal(state[id].Admin ? 0 : 1, removed.Count(e => e.Target == $"user:{id}" && e.Details!.Contains("\"admin\"", StringComparison.Ordinal)));
            var disablesDone = Enumerable.Range(0, requests.Count).Count(i =>
                requests[i].Path == $"api/admin/users/{id}/disable" && answers[i].Status == HttpStatusCode.NoContent);
            Assert.Equal(disablesDone, disabled.Count(e => e.Target == $"user:{id}"));
            Assert.Equal(state[id].Disabled, disablesDone > 0);
        }
    }

    [Fact]
    public async Task Parallel_permission_edits_of_one_role_on_two_instances_end_in_one_of_the_edits_never_a_mix()
    {
        await using var two = await TwoInstances.StartAsync();
        using var http = two.A.CreateClient();
        var rootToken = (await http.LoginAsync(two.RootName)).AccessToken;
        var role = ClientFlows.UniqueName("edited");
        using (var created = await http.SendAsync(HttpMethod.Post, "api/admin/roles", rootToken, new { name = role, permissions = new[] { "audit:read" } }))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // Ten different permission sets, written at once through both instances.
        var catalogue = Portcullis.Access.Permissions.All.Keys.Order(StringComparer.Ordinal).ToList();
        var sets = Enumerable.Range(0, 10)
            .Select(i => new[] { catalogue[i], catalogue[(i + 1) % catalogue.Count] }.Order(StringComparer.Ordinal).ToArray())
            .ToList();
        Assert.Equal(sets.Count, sets.Select(s => string.Join(',', s)).Distinct().Count());
        var answers = await InParallelAsync(two, [.. sets.Select((s, i) => (i, HttpMethod.Put, $"api/admin/roles/{role}", (object?)new { permissions = s }))], rootToken);
        foreach (var (status, response) in answers)
        {
            Assert.True(status == HttpStatusCode.OK, $"{(int)status} {await response.Content.ReadAsStringAsync()}");
            response.Dispose();
        }

        // The final permissions are exactly one of the sets: the last edit to commit, as the audit records it.
        using var viaB = two.B.CreateClient();
        using var read = await viaB.SendAsync(HttpMethod.Get, $"api/admin/roles/{role}", rootToken);
        var final = (await read.JsonAsync()).GetProperty("permissions").EnumerateArray().Select(p => p.GetString()!).ToArray();
        Assert.Contains(sets, s => s.SequenceEqual(final));

        var updates = (await AuditAsync(two.A, AuditEvents.RoleUpdated.Name)).Where(e => e.Target == $"role:{role}").ToList();
        Assert.Equal(sets.Count, updates.Count);
        var audited = updates.Select(e => JsonDocument.Parse(e.Details!).RootElement.GetProperty("permissions").EnumerateArray().Select(p => p.GetString()!).Order(StringComparer.Ordinal).ToArray()).ToList();
        Assert.All(sets, s => Assert.Contains(audited, a => a.SequenceEqual(s)));
        Assert.Equal(final, audited[^1]);

        // No duplicated or left-over permission rows behind the view.
        using var scope = two.B.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var roleId = await db.Roles.Where(r => r.Name == role).Select(r => r.Id).SingleAsync();
        Assert.Equal(final.Length, await db.RoleClaims.CountAsync(c => c.RoleId == roleId));
    }

    [Fact]
    public async Task Deleting_a_role_while_both_instances_assign_it_gives_no_server_error_and_leaves_no_holder()
    {
        await using var two = await TwoInstances.StartAsync();
        using var http = two.A.CreateClient();
        var rootToken = (await http.LoginAsync(two.RootName)).AccessToken;
        var role = ClientFlows.UniqueName("doomed");
        using (var created = await http.SendAsync(HttpMethod.Post, "api/admin/roles", rootToken, new { name = role, permissions = new[] { "audit:read" } }))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var users = new List<Guid>();
        for (var i = 0; i < 8; i++)
        {
            users.Add(await http.RegisterOkAsync(ClientFlows.UniqueName("holder")));
        }

        // Eight assignments and two deletions of the role, through both instances, at once.
        List<(int Server, HttpMethod Method, string Path, object? Body)> requests =
        [
            .. users.Select((id, i) => (i, HttpMethod.Put, $"api/admin/users/{id}/roles/{role}", (object?)null)),
            (0, HttpMethod.Delete, $"api/admin/roles/{role}", null),
            (1, HttpMethod.Delete, $"api/admin/roles/{role}", null),
        ];
        var answers = await InParallelAsync(two, requests, rootToken);
        var assigned = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var (status, response) = answers[i];
            if (status == HttpStatusCode.NotFound)
            {
                await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound); // the role was already gone
            }
            else
            {
                Assert.True(status == HttpStatusCode.NoContent, $"{requests[i].Method} {requests[i].Path}: {(int)status} {await response.Content.ReadAsStringAsync()}");
                assigned += requests[i].Method == HttpMethod.Put ? 1 : 0;
            }

            response.Dispose();
        }

        Assert.Equal(1, answers[^2..].Count(a => a.Status == HttpStatusCode.NoContent)); // one deletion did it

        using var viaB = two.B.CreateClient();
        using (var gone = await viaB.SendAsync(HttpMethod.Get, $"api/admin/roles/{role}", rootToken))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        foreach (var id in users)
        {
            using var user = await viaB.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", rootToken);
            Assert.DoesNotContain(role, (await user.JsonAsync()).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        }

        // Every assignment that answered 204 happened (and was then undone by the deletion), and is audited once.
        var audited = (await AuditAsync(two.A, AuditEvents.RoleAssigned.Name)).Count(e => e.Details!.Contains($"\"{role}\"", StringComparison.Ordinal));
        Assert.Equal(assigned, audited);
    }

    [Fact]
    public async Task Audit_events_written_on_two_instances_are_each_sealed_exactly_once_into_one_intact_chain()
    {
        var settings = new Dictionary<string, string?>
        {
            // Both sealers run often, on events only just written: their work overlaps all the time.
            ["Audit:SealInterval"] = "00:00:00.020",
            ["Audit:SealDelay"] = "00:00:00.200",
        };
        await using var two = await TwoInstances.StartAsync(settings);
        using var failures = SealFailureCounter(two);

        // Failed logins on both instances at once: each writes an audit event.
        var clients = new[] { two.A.CreateClient(), two.B.CreateClient() };
        try
        {
            var logins = Enumerable.Range(0, 30).Select(async i =>
            {
                using var response = await clients[i % 2].PasswordGrantAsync(ClientFlows.UniqueName("nobody"), "not the password " + i);
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            });
            await Task.WhenAll(logins);
        }
        finally
        {
            Array.ForEach(clients, c => c.Dispose());
        }

        Assert.True(await AllSealedAsync(two.A), "The sealers did not seal every event within 30 s.");
        await AssertChainAsync(two);
        Assert.Equal(0, failures.Count);
    }

    [Fact]
    public async Task Parallel_seal_runs_from_two_instances_all_succeed_and_seal_each_event_once()
    {
        // The background sealers are kept out of the way: the test runs the sealing itself, eight times at once.
        await using var two = await TwoInstances.StartAsync(new() { ["Audit:SealInterval"] = "01:00:00" });
        using (var http = two.A.CreateClient())
        {
            for (var i = 0; i < 10; i++)
            {
                using var response = await http.PasswordGrantAsync(ClientFlows.UniqueName("nobody"), "not the password");
            }
        }

        var scopes = Enumerable.Range(0, 8).Select(i => two[i].Services.CreateAsyncScope()).ToList();
        try
        {
            var cutoff = DateTimeOffset.UtcNow.AddMinutes(1);
            var sealedCounts = await Task.WhenAll(scopes.Select(s => AuditSealer.SealAsync(s.ServiceProvider.GetRequiredService<PortcullisDb>(), cutoff, default)));
            using var scope = two.A.Services.CreateScope();
            Assert.Equal(await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.CountAsync(), sealedCounts.Sum());
        }
        finally
        {
            foreach (var s in scopes)
            {
                await s.DisposeAsync();
            }
        }

        await AssertChainAsync(two);
    }

    /// <summary>Polls (bounded) until every audit event has a seal.</summary>
    private static async Task<bool> AllSealedAsync(PortcullisServer server)
    {
        for (var attempt = 0; attempt < 300; attempt++)
        {
            using var scope = server.Services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            if (await db.AuditEvents.CountAsync() == await db.AuditSeals.CountAsync())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    /// <summary>One seal per event, sequences 1..n without gaps, and `portcullis audit verify` on both instances says intact.</summary>
    private static async Task AssertChainAsync(TwoInstances two)
    {
        using (var scope = two.B.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var events = await db.AuditEvents.AsNoTracking().Select(e => e.Id).OrderBy(id => id).ToListAsync();
            var seals = await db.AuditSeals.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
            Assert.Equal(events, seals.Select(s => s.EventId).Order());
            Assert.Equal(Enumerable.Range(1, seals.Count).Select(i => (long)i), seals.Select(s => s.Sequence));
        }

        foreach (var server in new[] { two.A, two.B })
        {
            var verify = await server.RunCliAsync(null, "audit", "verify");
            Assert.True(verify.ExitCode == CliApp.Ok, verify.Out + verify.Error);
            Assert.StartsWith("OK:", verify.Out, StringComparison.Ordinal);
        }
    }

    /// <summary>Counts failed seal runs (portcullis.audit.write_failures) of exactly these two servers.</summary>
    private static FailureCounter SealFailureCounter(TwoInstances two)
    {
        var counters = new[] { two.A, two.B }.Select(s => s.Services.GetRequiredService<PortcullisMetrics>().AuditWriteFailures).ToList();
        var counter = new FailureCounter();
        counter.Listener.InstrumentPublished = (instrument, listener) =>
        {
            if (counters.Any(c => ReferenceEquals(c, instrument)))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        counter.Listener.SetMeasurementEventCallback<long>((_, value, _, _) => counter.Add(value));
        counter.Listener.Start();
        return counter;
    }

    private sealed class FailureCounter : IDisposable
    {
        private long _total;

        public MeterListener Listener { get; } = new();

        public long Count => Interlocked.Read(ref _total);

        public void Add(long value) => Interlocked.Add(ref _total, value);

        public void Dispose() => Listener.Dispose();
    }
}
