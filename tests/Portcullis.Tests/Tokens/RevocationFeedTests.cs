using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Portcullis.Access;
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

    [Fact]
    public async Task A_wall_clock_step_forward_does_not_give_up_on_a_revocation_still_committing()
    {
        // The wall clock jumps 10 minutes (beyond GapWait) while no time passes on the monotonic clock: the skipped
        // id is still one a running transaction may hold, and its revocation must apply when it commits.
        var time = new SteppingClock();
        await using var server = await PortcullisServer.StartAsync(services: s =>
        {
            s.RemoveAll<TimeProvider>();
            s.AddSingleton<TimeProvider>(time);
        });
        var state = server.Services.GetRequiredService<RevocationState>();
        var newer = await InsertAsync(server, id: null, "step-newer", time.GetUtcNow().AddMinutes(5));
        await WaitAsync(() => state.IsTokenRevoked("step-newer"), "step-newer was never applied from the feed");

        time.StepWallClock(TimeSpan.FromMinutes(10));
        // step-newer's row expired on the wall clock: once it is pruned, a whole sync pass has run after the step.
        await WaitAsync(() => !state.IsTokenRevoked("step-newer"), "no sync pass ran after the clock step");

        await InsertAsync(server, newer - 5, "step-older", time.GetUtcNow().AddHours(1));
        await WaitAsync(() => state.IsTokenRevoked("step-older"), "step-older, committed late, was never applied");
    }

    private static async Task<long> InsertAsync(PortcullisServer server, long? id, string jti, DateTimeOffset expires)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        // Leave room below for the "older" row: the first row gets an id well above what the server has used.
        var nextId = id ?? ((await db.Revocations.MaxAsync(r => (long?)r.Id, TestContext.Current.CancellationToken) ?? 0) + 100);
        db.Revocations.Add(new Revocation { Id = nextId, Kind = RevocationKinds.AccessToken, Value = jti, CreatedAt = expires.AddMinutes(-10), ExpiresAt = expires });
        await db.SaveChangesAsync(TestContext.Current.CancellationToken);
        return nextId;
    }

    private static async Task WaitAsync(Func<bool> condition, string message)
    {
        // The background sync runs every 200 ms in tests; allow it ample time on a busy machine.
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        Assert.True(condition(), message);
    }

    private Task<long> InsertAsync(long? id, string jti) => InsertAsync(_server, id, jti, DateTimeOffset.UtcNow.AddMinutes(10));

    private static Task WaitRevokedAsync(RevocationState state, string jti) =>
        WaitAsync(() => state.IsTokenRevoked(jti), $"{jti} was never applied from the feed");
}
