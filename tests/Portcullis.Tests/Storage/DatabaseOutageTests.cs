using System.Diagnostics;
using System.Net;
using Npgsql;
using Portcullis.Cli;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Storage;

/// <summary>
/// F02 on PostgreSQL: a private throwaway cluster (scripts/pg-cluster.sh), so stopping it affects no other test.
/// It runs in both passes of scripts/test.sh; without PostgreSQL it fails rather than skips.
/// </summary>
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    private const int TimeoutSeconds = 3;
    private string _clusterDir = null!;
    private Dictionary<string, string> _env = null!;
    private PortcullisServer _server = null!;
    private HttpClient _http = null!;

    public async ValueTask InitializeAsync()
    {
        var (_, output) = await ClusterAsync("start");
        _env = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("export ", StringComparison.Ordinal))
            .Select(l => l["export ".Length..].Split('=', 2))
            .ToDictionary(p => p[0], p => p[1].Trim('\''));
        _clusterDir = _env["PORTCULLIS_PG_DIR"];

        // An empty database owned by the owner role; `portcullis migrate` (as the owner) creates the schema.
        await using (var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_env["PORTCULLIS_TEST_PG_ADMIN"]) { Database = "postgres", Pooling = false }.ConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE DATABASE portcullis OWNER portcullis_owner", admin);
            await create.ExecuteNonQueryAsync();
        }

        var dataDirectory = Directory.CreateTempSubdirectory("portcullis-f02-").FullName;
        var owner = Connection("PORTCULLIS_TEST_PG_OWNER");
        var migrate = await RunCliAsync(owner, dataDirectory, "migrate");
        Assert.True(migrate.Exit == 0, migrate.Error);
        Assert.Contains("Applied", migrate.Out, StringComparison.Ordinal);
        await using (var grants = new NpgsqlConnection(owner))
        {
            await grants.OpenAsync();
            await using var command = new NpgsqlCommand(
                """
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portcullis_app;
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portcullis_app;
                """, grants);
            await command.ExecuteNonQueryAsync();
        }

        _server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Storage:Provider"] = "Postgres",
                ["Storage:ConnectionString"] = Connection("PORTCULLIS_TEST_PG_APP"),
                ["Storage:TimeoutSeconds"] = TimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
            dataDirectory: dataDirectory);
        _http = _server.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_clusterDir is not null)
        {
            await ClusterAsync("stop", _clusterDir);
        }
    }

    [Fact]
    public async Task F02_with_the_database_down_login_refresh_and_me_answer_503_in_time_and_service_recovers_without_restart()
    {
        var (_, username, tokens) = await _http.NewUserAsync("f02");
        await ClusterAsync("pause", _clusterDir);
        try
        {
            foreach (var (name, call) in new (string, Func<Task<HttpResponseMessage>>)[]
            {
                ("login", () => _http.PasswordGrantAsync(username, ClientFlows.Password)),
                ("refresh", () => _http.RefreshAsync(tokens.RefreshToken!)),
                ("me", () => _http.GetWithTokenAsync("api/me", tokens.AccessToken)),
            })
            {
                var clock = Stopwatch.StartNew();
                using var response = await call();
                clock.Stop();
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{name}: {(int)response.StatusCode} {body}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Contains("https://portcullis.dev/problems/unavailable", body, StringComparison.Ordinal);
                Assert.DoesNotContain("access_token", body, StringComparison.Ordinal);
                Assert.DoesNotContain("refresh_token", body, StringComparison.Ordinal);
                Assert.DoesNotContain("Npgsql", body, StringComparison.Ordinal);
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds((TimeoutSeconds * 2) + 5), $"{name} took {clock.Elapsed}.");
            }
        }
        finally
        {
            await ClusterAsync("resume", _clusterDir);
        }

        // Recovery without a restart: the same server answers again once the database is back (a pooled connection
        // broken by the outage may fail one more request; each call is retried for a bounded time).
        await EventuallyOkAsync(() => _http.PasswordGrantAsync(username, ClientFlows.Password));
        await EventuallyOkAsync(() => _http.RefreshAsync(tokens.RefreshToken!));
        await EventuallyOkAsync(() => _http.GetWithTokenAsync("api/me", tokens.AccessToken));
    }

    private static async Task EventuallyOkAsync(Func<Task<HttpResponseMessage>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await call();
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return;
            }

            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline,
                $"After the database returned: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(250);
        }
    }

    private string Connection(string variable) =>
        new NpgsqlConnectionStringBuilder(_env[variable]) { Database = "portcullis" }.ConnectionString;

    private static async Task<(int Exit, string Out, string Error)> RunCliAsync(string connection, string dataDirectory, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync(
            [.. args, "--data-dir", dataDirectory], new StringReader(""), output, error,
            new Dictionary<string, string?>
            {
                ["Storage:Provider"] = "Postgres",
                ["Storage:ConnectionString"] = connection,
                ["KeyEncryption:CertificatePath"] = TestDatabase.KeyEncryptionKeyFile,
            });
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>Runs scripts/pg-cluster.sh; a failure (no PostgreSQL) fails the test.</summary>
    internal static async Task<(int Exit, string Out)> ClusterAsync(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(Repository.Root, "scripts", "pg-cluster.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"pg-cluster.sh {string.Join(' ', args)} failed: {await stderr}");
        return (process.ExitCode, await stdout);
    }
}
