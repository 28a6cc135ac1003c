using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portcullis.Storage;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Storage;

/// <summary>
/// The per-connection SQLite settings: a busy timeout (so concurrent writers wait for the lock inside SQLite instead
/// of the driver's 150 ms sleeps) and <c>Storage:SqliteSynchronous</c> (Full by default: a commit survives a power
/// loss). Read back from the server's own connections, not from the configuration.
/// </summary>
public sealed class SqliteSettingsTests : IAsyncDisposable
{
    private readonly string _dataDirectory = HostRun.NewDataDirectory();

    public ValueTask DisposeAsync() => new(HostRun.DeleteQuietlyAsync(_dataDirectory));

    [Fact]
    public async Task Server_connections_wait_for_the_write_lock_and_flush_every_commit_by_default()
    {
        Assert.SkipWhen(TestDatabase.IsPostgres, "SQLite connection settings; the SQLite pass runs this.");
        await using var server = await PortcullisServer.StartAsync(dataDirectory: _dataDirectory);

        var (busyTimeout, synchronous) = await ReadSettingsAsync(server);

        Assert.Equal(15_000, busyTimeout); // Storage:TimeoutSeconds (default 15) in milliseconds
        Assert.Equal(2, synchronous); // FULL
    }

    [Fact]
    public async Task Normal_synchronous_is_applied_to_every_connection_when_configured()
    {
        Assert.SkipWhen(TestDatabase.IsPostgres, "SQLite connection settings; the SQLite pass runs this.");
        await using var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?> { ["Storage:SqliteSynchronous"] = "Normal", ["Storage:TimeoutSeconds"] = "7" },
            dataDirectory: _dataDirectory);

        var (busyTimeout, synchronous) = await ReadSettingsAsync(server);

        Assert.Equal(7_000, busyTimeout);
        Assert.Equal(1, synchronous); // NORMAL

        // And the server works on it: parallel writes (registrations) all succeed.
        var statuses = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            using var client = server.CreateClient();
            using var response = await client.RegisterAsync($"sync-normal-{i}");
            return response.StatusCode;
        }));
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.Created, s));
    }

    [Fact]
    public async Task An_unknown_synchronous_mode_stops_start_up_and_names_the_setting()
    {
        var port = HostRun.FreePort();
        var settings = HostRun.Settings(_dataDirectory, port, ("Storage:SqliteSynchronous", "Off"));

        var failure = await HostRun.StartFailsAsync(settings);

        var validation = Assert.IsType<OptionsValidationException>(failure);
        Assert.Contains(validation.Failures, f => f.Contains("Storage:SqliteSynchronous", StringComparison.Ordinal));
        Assert.False(await HostRun.ListensAsync(port));
    }

    private static async Task<(long BusyTimeout, long Synchronous)> ReadSettingsAsync(PortcullisServer server)
    {
        // Several contexts in turn, so pooled and fresh connections are both checked.
        var results = new List<(long, long)>();
        for (var i = 0; i < 3; i++)
        {
            using var scope = server.Services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            await db.Database.OpenConnectionAsync(TestContext.Current.CancellationToken);
            var connection = db.Database.GetDbConnection();
            results.Add((await ScalarAsync(connection, "PRAGMA busy_timeout;"), await ScalarAsync(connection, "PRAGMA synchronous;")));
            await db.Database.CloseConnectionAsync();
        }

        Assert.Single(results.Distinct());
        return results[0];
    }

    private static async Task<long> ScalarAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }
}
