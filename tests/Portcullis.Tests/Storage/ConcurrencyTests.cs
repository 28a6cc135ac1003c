using System.Net;
using System.Text.Json;
using Portcullis.Tests.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Storage;

/// <summary>
/// Concurrency on the configured store (scripts/test.sh runs this on SQLite and again on PostgreSQL):
/// one refresh token redeemed at most once, and parallel role changes leave a consistent state.
/// </summary>
public sealed class ConcurrencyTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private HttpClient Http => fixture.Client;

    [Fact]
    public async Task S06_twenty_parallel_refreshes_with_one_refresh_token_give_at_most_one_success()
    {
        var (_, _, tokens) = await Http.NewUserAsync("s06");
        var refresh = tokens.RefreshToken!;

        // Each request on its own connection so they really overlap on the server.
        var clients = Enumerable.Range(0, 20).Select(_ => fixture.Server.CreateClient()).ToList();
        try
        {
            using var start = new SemaphoreSlim(0, 20);
            var attempts = clients.Select(async client =>
            {
                await start.WaitAsync();
                using var response = await client.RefreshAsync(refresh);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    // A refused redemption is an OAuth error, never a server error.
                    await Refusal.AssertInvalidGrantAsync(response);
                }

                return response.StatusCode;
            }).ToList();
            start.Release(20);
            var results = await Task.WhenAll(attempts);

            var successes = results.Count(status => status == HttpStatusCode.OK);
            Assert.True(successes <= 1, $"{successes} of 20 parallel refreshes with one refresh token succeeded.");
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task S06_parallel_assignments_of_one_role_give_one_membership_and_no_server_error()
    {
        var token = await fixture.AdminTokenAsync();
        var (id, _, _) = await Http.NewUserAsync("s06role");

        var statuses = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await Http.SendAsync(HttpMethod.Put, $"api/admin/users/{id}/roles/admin", token);
            return response.StatusCode;
        }));
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.NoContent, s));

        using var user = await Http.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", token);
        var roles = (await user.JsonAsync()).GetProperty("roles").EnumerateArray().Select(r => r.GetString()).ToList();
        Assert.Equal(1, roles.Count(r => r == "admin"));

        // And parallel removal of the same role ends with the role gone, again without a server error.
        var removals = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await Http.SendAsync(HttpMethod.Delete, $"api/admin/users/{id}/roles/admin", token);
            return response.StatusCode;
        }));
        Assert.All(removals, s => Assert.Equal(HttpStatusCode.NoContent, s));
        using var after = await Http.SendAsync(HttpMethod.Get, $"api/admin/users/{id}", token);
        Assert.DoesNotContain("admin", (await after.JsonAsync()).GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }
}
