using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Tokens;

/// <summary>Reads the revocation feed and the key table on an interval, so every instance converges.</summary>
public sealed partial class TokenStateSync(
    IServiceScopeFactory scopes, RevocationState revocations, KeyRing keys,
    IOptions<TokensOptions> options, TimeProvider time, ILogger<TokenStateSync> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // PortcullisHost.InitializeAsync has just read the feed and the keys: the first pass waits one interval
        // instead of repeating that work while the server is still starting.
        using var timer = new PeriodicTimer(options.Value.SyncInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
                await revocations.SyncAsync(db, stoppingToken);
                if (await keys.ReloadAsync(db, stoppingToken))
                {
                    LogKeysReloaded(logger);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The database may be briefly unreachable; keep the last known state and try again.
                LogSyncFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(EventId = EventIds.Tokens.KeysReloaded, Level = LogLevel.Information, Message = "Token keys reloaded from the database.")]
    private static partial void LogKeysReloaded(ILogger logger);

    [LoggerMessage(EventId = EventIds.Tokens.RevocationSyncFailed, Level = LogLevel.Warning, Message = "Reading revocations and keys failed; keeping the last known state.")]
    private static partial void LogSyncFailed(ILogger logger, Exception ex);
}
