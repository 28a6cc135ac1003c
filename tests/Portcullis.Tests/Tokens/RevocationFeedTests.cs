using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// The revocation feed reaches every instance even when rows commit out of id order (PostgreSQL hands out ids at
/// insert; a transaction holding a lower id can commit after one holding a higher id). A revocation skipped that way
/// would never apply and the revoked token would keep working: fail-open.
/// </summary>
public sealed class RevocationFeedTests : IAsyncLifetime
{
    private PortcullisServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await PortcullisServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_revocation_that_commits_after_a_newer_one_still_applies()
    {
        var state = _server.Services.GetRequiredService<RevocationState>();
        var newer = await InsertAsync(id: null, "late-newer");
        await WaitRevokedAsync(state, "late-newer"); // the feed has now moved past `newer`

        // As if a transaction that took an earlier id committed only now.
        await InsertAsync(newer - 5, "late-older");

        await WaitRevokedAsync(state, "late-older");
        Assert.False(state.IsTokenRevoked("never-revoked")); // control
    }

    private async Task<long> InsertAsync(long? id, string jti)
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var now = DateTimeOffset.UtcNow;
        // Leave room below for the "older" row: the first row gets an id well above what the server has used.
        var nextId = id ?? ((await db.Revocations.MaxAsync(r => (long?)r.Id, TestContext.Current.CancellationToken) ?? 0) + 100);
        db.Revocations.Add(new Revocation { Id = nextId, Kind = RevocationKinds.AccessToken, Value = jti, CreatedAt = now, ExpiresAt = now.AddMinutes(10) });
        await db.SaveChangesAsync(TestContext.Current.CancellationToken);
        return nextId;
    }

    private static async Task WaitRevokedAsync(RevocationState state, string jti)
    {
        // The background sync runs every 200 ms in tests; allow it ample time on a busy machine.
        for (var i = 0; i < 100 && !state.IsTokenRevoked(jti); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.True(state.IsTokenRevoked(jti), $"{jti} was never applied from the feed");
    }
}
