using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Audit;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Audit;

public sealed class DenialAggregationTests
{
    [Fact]
    public async Task Fifty_identical_forbidden_requests_leave_two_audit_rows_that_count_fifty()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var (id, _, tokens) = await http.NewUserAsync("hammer");
        for (var i = 0; i < 50; i++)
        {
            using var denied = await http.GetWithTokenAsync("api/admin/users", tokens.AccessToken);
            Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        }

        // A different permission is a different key: written at once, not folded into the other's count.
        using (var other = await http.GetWithTokenAsync("api/admin/audit", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        }

        await server.Services.GetRequiredService<DenialAggregator>().FlushAsync(default);

        await using var scope = server.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.AsNoTracking()
            .Where(e => e.Name == "authz_fail" && e.Actor == $"user:{id}").OrderBy(e => e.Id).ToListAsync();
        var users = rows.Where(r => r.Target!.StartsWith("/api/admin/users", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, users.Count);
        Assert.NotNull(users[0].TraceId); // the first is written at once, with its request's trace id
        var first = JsonDocument.Parse(users[0].Details!).RootElement;
        Assert.False(first.TryGetProperty("count", out _));
        var summary = JsonDocument.Parse(users[1].Details!).RootElement;
        Assert.Equal(49, summary.GetProperty("count").GetInt64());
        Assert.True(summary.GetProperty("repeated").GetBoolean());
        Assert.Equal("users:read", summary.GetProperty("missingPermission").GetString());
        Assert.Equal("127.0.0.1", users[1].ClientIp);
        Assert.Single(rows, r => r.Target!.StartsWith("/api/admin/audit", StringComparison.Ordinal));

        // A new interval starts fresh: the next denial is written at once again.
        using (var again = await http.GetWithTokenAsync("api/admin/users", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Forbidden, again.StatusCode);
        }

        Assert.Equal(3, await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents
            .CountAsync(e => e.Name == "authz_fail" && e.Actor == $"user:{id}" && e.Target!.StartsWith("/api/admin/users")));
    }
}
