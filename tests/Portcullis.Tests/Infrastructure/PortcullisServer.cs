using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A real Portcullis: Kestrel with TLS on a free loopback port, a fresh SQLite file in a temporary directory, the
/// real pipeline. Clients trust exactly this server's certificate. Nothing is mocked.
/// </summary>
public sealed class PortcullisServer : IAsyncDisposable
{
    public const string ClientId = "portcullis";

    private PortcullisServer(WebApplication app, string dataDirectory, Uri baseAddress, X509Certificate2 certificate, SecretCanary canary, string label, LogCapture logs)
    {
        App = app;
        DataDirectory = dataDirectory;
        BaseAddress = baseAddress;
        Certificate = certificate;
        Canary = canary;
        Label = label;
        Logs = logs;
    }

    /// <summary>Where this server's secrets are recorded and its logs and audit rows are scanned (L02).</summary>
    public SecretCanary Canary { get; }

    /// <summary>The test (or test class, for a shared fixture) that started this server; canary findings name it.</summary>
    public string Label { get; }

    /// <summary>The server's log output as the JSON console formatter writes it (after redaction).</summary>
    public LogCapture Logs { get; }

    public WebApplication App { get; }

    public IServiceProvider Services => App.Services;

    public string DataDirectory { get; }

    public Uri BaseAddress { get; }

    public X509Certificate2 Certificate { get; }

    /// <summary>Settings as <c>Section:Key</c> pairs; <c>urls</c> and the data directory are filled in.</summary>
    /// <param name="testEndpoints">Map <see cref="TestEndpoints"/> (the F01 fault route); false serves the product's endpoints only.</param>
    /// <param name="configureApp">Changes the built app before it starts, as a host embedding the product may (bench/Portcullis.Bench).</param>
    public static async Task<PortcullisServer> StartAsync(
        IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? services = null,
        string environment = "Test",
        string? dataDirectory = null,
        SecretCanary? canary = null,
        bool testEndpoints = true,
        Action<WebApplication>? configureApp = null)
    {
        canary ??= SecretCanary.Suite;
        var context = TestContext.Current;
        var label = context.Test?.TestDisplayName ?? context.TestClass?.TestClassName ?? "(outside a test)";
        dataDirectory ??= Directory.CreateTempSubdirectory("portcullis-test-").FullName;
        var storage = await TestDatabase.SettingsForAsync(dataDirectory); // SQLite, or this directory's PostgreSQL database
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var overrides = TestSettings();
            overrides["urls"] = $"https://127.0.0.1:{port}";
            overrides["Storage:DataDirectory"] = dataDirectory;
            foreach (var (key, value) in storage.Concat(settings ?? new Dictionary<string, string?>()))
            {
                overrides[key] = value;
            }

            var builder = PortcullisHost.CreateBuilder(overrides, environment);
            LogCapture? logs = null;
            LogCapture.AddTo(builder.Services, text => canary.Scan($"{label} (logs)", text), created => logs = created);
            services?.Invoke(builder.Services);
            var app = PortcullisHost.BuildApp(builder);
            if (testEndpoints)
            {
                TestEndpoints.MapFault(app);
            }

            configureApp?.Invoke(app);
            try
            {
                await PortcullisHost.InitializeAsync(app.Services);
                await app.StartAsync();
            }
            catch (IOException) when (attempt < 5)
            {
                await app.DisposeAsync(); // the port was taken between probing and binding
                continue;
            }

            var certificate = X509Certificate2.CreateFromPemFile(
                Path.Combine(dataDirectory, Certificates.DevCertFile), Path.Combine(dataDirectory, Certificates.DevKeyFile));
            var url = overrides["urls"]!.Split(';')[0];
            return new PortcullisServer(app, dataDirectory, new Uri(url + "/"), certificate, canary, label, logs!)
            {
                // The CLI must open the key ring the server encrypted: the same key-encryption key settings.
                KeyEncryptionSettings = overrides.Where(s => s.Key.StartsWith("KeyEncryption:", StringComparison.Ordinal)).ToDictionary(),
            };
        }
    }

    /// <summary>
    /// An HttpClient that trusts only this server's certificate (pinned by thumbprint). It records every password,
    /// secret and token it sends or receives in the canary.
    /// </summary>
    public HttpClient CreateClient(HttpMessageHandler? inner = null)
    {
        var handler = inner ?? new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == Certificate.GetCertHashString() },
            AllowAutoRedirect = false,
        };
        return new HttpClient(new SecretRecordingHandler(Canary) { InnerHandler = handler }) { BaseAddress = BaseAddress };
    }

    /// <summary>Runs a CLI command in-process against this server's data directory.</summary>
    public Task<CliResult> RunCliAsync(string? stdin, params string[] args) => RunCommandAsync(CliApp.RunAsync, stdin, args);

    /// <summary>An entry point shaped like <see cref="CliApp.RunAsync"/> (the product's CLI, or bench/Portcullis.Bench's).</summary>
    public delegate Task<int> CommandLine(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, IReadOnlyDictionary<string, string?>? settings);

    /// <summary>Runs <paramref name="command"/> in-process against this server's data directory, as <see cref="RunCliAsync"/>.</summary>
    public async Task<CliResult> RunCommandAsync(CommandLine command, string? stdin, params string[] args)
    {
        // Passwords given to the CLI (argument or stdin) and secrets it prints are the suite's secrets too.
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (args[i].Contains("password", StringComparison.OrdinalIgnoreCase) || args[i].Contains("secret", StringComparison.OrdinalIgnoreCase))
            {
                Canary.Record(args[i + 1]);
            }
        }

        if (args.Any(a => a.EndsWith("-stdin", StringComparison.Ordinal)))
        {
            foreach (var line in (stdin ?? "").Split('\n'))
            {
                Canary.Record(line.TrimEnd('\r'));
            }
        }

        var output = new StringWriter();
        var error = new StringWriter();
        var settings = await TestDatabase.SettingsForAsync(DataDirectory);
        foreach (var (key, value) in KeyEncryptionSettings)
        {
            settings[key] = value;
        }

        var exit = await command([.. args, "--data-dir", DataDirectory], new StringReader(stdin ?? ""), output, error, settings);
        foreach (var line in output.ToString().Split('\n'))
        {
            Canary.RecordFromJson(line);
        }

        Canary.RecordFromJson(output.ToString());
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    public sealed record CliResult(int ExitCode, string Out, string Error);

    private IReadOnlyDictionary<string, string?> KeyEncryptionSettings { get; init; } = new Dictionary<string, string?>();

    private bool _stopped;

    /// <summary>Stops the server but keeps its data directory, so a new server can start on it (restart tests).</summary>
    public async Task StopKeepingDataAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            try
            {
                await ScanAuditAsync();
            }
            finally
            {
                // A failed scan fails the test, but the server still stops.
                await App.StopAsync();
                await App.DisposeAsync();
                Canary.Scan($"{Label} (logs)", Logs.Drain());
            }
        }
    }

    /// <summary>
    /// Scans the audit rows for the canary's secrets, a batch at a time, while the database is still there. A scan
    /// that cannot read the rows fails the test: a scan of nothing would pass.
    /// </summary>
    private async Task ScanAuditAsync()
    {
        try
        {
            await using var scope = Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            long after = 0;
            var text = new StringBuilder();
            for (var batch = 0; batch < 10_000; batch++)
            {
                var rows = await db.AuditEvents.AsNoTracking().Where(e => e.Id > after).OrderBy(e => e.Id).Take(1000).ToListAsync();
                text.Clear();
                foreach (var e in rows)
                {
                    text.Append(e.Name).Append('|').Append(e.Actor).Append('|').Append(e.Target).Append('|').Append(e.ClientIp).Append('|').Append(e.Details).Append('\n');
                }

                Canary.Scan($"{Label} (audit)", text.ToString());
                if (rows.Count < 1000)
                {
                    return;
                }

                after = rows[^1].Id;
            }

            Assert.Fail($"{Label}: more than 10,000,000 audit rows; the scan stopped before the end.");
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.IAssertionException)
        {
            throw new InvalidOperationException(
                $"{Label}: the audit rows could not be scanned for secrets, so this test cannot show that none leaked.", ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopKeepingDataAsync();
        }
        finally
        {
            await TestDatabase.DropAsync(DataDirectory);
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
                // SQLite may still hold the file briefly; the OS cleans temp eventually.
            }
        }
    }

    /// <summary>
    /// What every test server runs with, as <c>Section:Key</c> pairs: limits that would get in the way of tests that log
    /// in many times from 127.0.0.1 are effectively off (the throttle and rate-limit tests set their own).
    /// </summary>
    public static Dictionary<string, string?> TestSettings() => new()
    {
        // Tests see cross-process revocations (the CLI) quickly.
        ["Tokens:SyncInterval"] = "00:00:00.200",
        // Every test logs in from 127.0.0.1; the throttle tests set their own limits.
        ["LoginThrottle:AttemptsPerIp"] = "1000000",
        ["LoginThrottle:FreeFailuresPerAccount"] = "1000000",
        // Likewise the rate limits: effectively off; the rate-limit tests start servers with tight ones.
        ["RateLimits:Policies:credentials:Algorithm"] = "FixedWindow",
        ["RateLimits:Policies:credentials:PermitLimit"] = "1000000",
        ["RateLimits:Policies:credentials:Window"] = "00:01:00",
        ["RateLimits:Policies:authenticated:Algorithm"] = "FixedWindow",
        ["RateLimits:Policies:authenticated:PermitLimit"] = "1000000",
        ["RateLimits:Policies:authenticated:Window"] = "00:01:00",
        ["RateLimits:Policies:anonymous:Algorithm"] = "FixedWindow",
        ["RateLimits:Policies:anonymous:PermitLimit"] = "1000000",
        ["RateLimits:Policies:anonymous:Window"] = "00:01:00",
        ["RateLimits:GlobalConcurrencyLimit"] = "100000",
        // The hashing limit keeps its default width (memory stays bounded) but concurrent logins and
        // registrations wait instead of getting 503; PasswordVerificationLimitTests set their own queue.
        ["PasswordHashing:QueueLimit"] = "10000",
        ["PasswordHashing:QueueTimeout"] = "00:00:30",
    };

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>What a client does through the real endpoints.</summary>
public static class ClientFlows
{
    public const string Password = "a long and unusual passphrase 7731";

    public static string UniqueName(string prefix = "user") => $"{prefix}{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 12, 40)];

    public static Task<HttpResponseMessage> RegisterAsync(this HttpClient http, string username, string? password = null, string? email = null) =>
        http.PostAsJsonAsync("api/accounts", new { username, email = email ?? $"{username}@example.com", password = password ?? Password });

    /// <summary>Registers and returns the new account's id; fails the test if registration fails.</summary>
    public static async Task<Guid> RegisterOkAsync(this HttpClient http, string username, string? password = null)
    {
        using var response = await http.RegisterAsync(username, password);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("id").GetGuid();
    }

    public static Task<HttpResponseMessage> PasswordGrantAsync(this HttpClient http, string username, string password, string scope = "openid offline_access", string clientId = PortcullisServer.ClientId) =>
        http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = username,
            ["password"] = password,
            ["client_id"] = clientId,
            ["scope"] = scope,
        }));

    public static Task<HttpResponseMessage> RefreshAsync(this HttpClient http, string refreshToken, string clientId = PortcullisServer.ClientId) =>
        http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refreshToken,
            ["client_id"] = clientId,
        }));

    public sealed record Tokens(string AccessToken, string? RefreshToken, int ExpiresIn);

    public static async Task<Tokens> ReadTokensAsync(this HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return new Tokens(
            body.GetProperty("access_token").GetString()!,
            body.TryGetProperty("refresh_token", out var refresh) ? refresh.GetString() : null,
            body.GetProperty("expires_in").GetInt32());
    }

    /// <summary>Logs in through the real token endpoint.</summary>
    public static async Task<Tokens> LoginAsync(this HttpClient http, string username, string? password = null)
    {
        using var response = await http.PasswordGrantAsync(username, password ?? Password);
        return await response.ReadTokensAsync();
    }

    /// <summary>Registers a fresh user and logs in.</summary>
    public static async Task<(Guid Id, string Username, Tokens Tokens)> NewUserAsync(this HttpClient http, string prefix = "user")
    {
        var username = UniqueName(prefix);
        var id = await http.RegisterOkAsync(username);
        return (id, username, await http.LoginAsync(username));
    }
}
