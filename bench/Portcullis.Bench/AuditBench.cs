using System.Collections.Immutable;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Audit;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Bench;

/// <summary>
/// <c>audit --count N</c> (bench/run.sh; issue 4: "writing audit events adds under 5% to a login") measures what the audit trail adds to a successful password login, on a fresh SQLite
/// file database in a temporary directory (the real model and migrations, WAL, the server's connection string),
/// deleted afterwards. Nothing of a configured installation is read or written.
/// <list type="bullet">
/// <item>The unit is the work a password grant does after the password check, through the same services and the
/// token endpoint's own code: the identity and its claims (<see cref="TokenPrincipals.UserIdentityAsync"/>, which
/// reads the account's roles), the authorization entry (<see cref="IOpenIddictAuthorizationManager.CreateAsync(ClaimsPrincipal, string, string, string, ImmutableArray{string}, CancellationToken)"/>),
/// the access-token entry, the reference refresh-token entry and its payload update (what OpenIddict's token
/// handlers do), each in its own request scope with an <see cref="HttpContext"/> and an activity as in a request.</item>
/// <item>Variant A writes no audit event; variant B stages the login's event through the endpoint's own
/// <see cref="LoginRecords.RecordLoginSucceeded"/> before the access-token entry, so it is saved by that entry's
/// SaveChanges, as on the login path. A and B run interleaved in blocks (A B B A …) so drift and noise from other
/// work on the machine fall on both alike; the difference is the audit cost.</item>
/// <item>Also: the failed-login write (<see cref="LoginRecords.AuditLoginFailedAsync"/>, its own SaveChanges), and
/// the background sealer's cost per event (SHA-256 chain, off the login path but CPU on the same machine).</item>
/// </list>
/// Prints one line of JSON: microseconds per login (median, mean, CPU time of the process per login).
/// </summary>
public static class AuditBench
{
    private static readonly Option<int> Count = new("--count") { Description = "Logins to time per variant (10-100,000).", DefaultValueFactory = _ => 2000 };
    private static readonly Option<int> Block = new("--block") { Description = "Logins per interleaved block (1-1,000, at most half of --count).", DefaultValueFactory = _ => 10 };

    private const int Warmup = 100;

    public static Command Create(CliIo io)
    {
        var command = new Command("audit", "Time the audit work of a login (A/B against the same login without it) on a temporary SQLite database.");
        command.Options.Add(Count);
        command.Options.Add(Block);
        command.SetAction(async (parse, ct) =>
        {
            var count = parse.GetValue(Count);
            var block = parse.GetValue(Block);
            if (count is < 10 or > 100_000 || block < 1 || block > Math.Min(1000, count / 2))
            {
                // At least two block pairs, so the spread of their differences gives an interval.
                await io.Error.WriteLineAsync("error: --count must be 10-100000 and --block 1-1000 (at most half of --count).");
                return CliApp.Usage;
            }

            var directory = Directory.CreateTempSubdirectory("portcullis-bench-audit-");
            try
            {
                // Always a fresh SQLite file: whatever database is configured (and --data-dir) is left alone.
                var overrides = CliApp.Overrides(parse);
                overrides[$"{StorageOptions.Section}:{nameof(StorageOptions.Provider)}"] = StorageOptions.Sqlite;
                overrides[$"{StorageOptions.Section}:{nameof(StorageOptions.DataDirectory)}"] = directory.FullName;
                overrides[$"{StorageOptions.Section}:{nameof(StorageOptions.ConnectionString)}"] =
                    StorageServices.DefaultSqliteConnectionString(directory.FullName); // what a server without one uses
                // Only errors are logged: stdout is the JSON line, and log writing is no part of what is measured.
                overrides["Logging:LogLevel:Default"] = "Error";
                overrides["Logging:LogLevel:Microsoft.AspNetCore.DataProtection"] = "Error"; // the temporary key ring
                return await CliApp.WithServicesAsync(parse, io, services => RunAsync(io, services, count, block, ct), overrides);
            }
            finally
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                directory.Delete(recursive: true);
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(CliIo io, IServiceProvider services, int count, int block, CancellationToken ct)
    {
        var bench = new Runner(services, ct);
        await bench.PrepareAsync();

        // Warm-up (JIT, EF Core's compiled queries and update pipeline, the connection pool), not recorded.
        for (var i = 0; i < Warmup; i += 10)
        {
            await bench.LoginBlockAsync(false, 10, null);
            await bench.LoginBlockAsync(true, 10, null);
        }

        var without = new Samples(count);
        var with = new Samples(count);
        // Per pair of neighbouring blocks: B's mean minus A's, wall and CPU; their spread gives the uncertainty.
        var wallDifferences = new List<double>();
        var cpuDifferences = new List<double>();
        for (var done = 0; done < count; done += block)
        {
            var n = Math.Min(block, count - done);
            // A B, then B A: a slow trend (a growing table, a neighbour's build) does not favour either side.
            var withFirst = done / block % 2 == 1;
            var first = await bench.LoginBlockAsync(withFirst, n, withFirst ? with : without);
            var second = await bench.LoginBlockAsync(!withFirst, n, withFirst ? without : with);
            var (b, a) = withFirst ? (first, second) : (second, first);
            wallDifferences.Add(b.Wall - a.Wall);
            cpuDifferences.Add(b.Cpu - a.Cpu);
        }

        var failed = new Samples(Math.Max(10, count / 4));
        await bench.FailedLoginsAsync(Warmup / 4, null);
        for (var done = 0; done < failed.Capacity; done += block)
        {
            await bench.FailedLoginsAsync(Math.Min(block, failed.Capacity - done), failed);
        }

        // What was measured must have been written: one event per audited login and per failed login, none otherwise.
        var written = await bench.CountEventsAsync();
        var expected = (LoginSucceeded: Warmup + count, LoginFailed: (Warmup / 4) + failed.Count);
        if (written != expected)
        {
            await io.Error.WriteLineAsync($"error: expected {expected} audit events, found {written}.");
            return CliApp.Failed;
        }

        var (sealedEvents, sealUs, sealCpuUs) = await bench.SealAllAsync();

        await io.Out.WriteLineAsync(JsonSerializer.Serialize(new
        {
            count,
            block,
            database = "sqlite (temporary file, WAL)",
            auditRowsPerLogin = 1,
            withoutAuditMedianUs = Round(without.Median),
            withoutAuditMeanUs = Round(without.Mean),
            withoutAuditCpuUs = Round(without.CpuPerUnit),
            withAuditMedianUs = Round(with.Median),
            withAuditMeanUs = Round(with.Mean),
            withAuditCpuUs = Round(with.CpuPerUnit),
            auditMedianUs = Round(with.Median - without.Median),
            auditMeanUs = Round(with.Mean - without.Mean),
            auditMeanCi95Us = Round(Ci95(wallDifferences)),
            auditPairedMedianUs = Round(Median(wallDifferences)),
            auditCpuUs = Round(with.CpuPerUnit - without.CpuPerUnit),
            auditCpuCi95Us = Round(Ci95(cpuDifferences)),
            recordMedianUs = Round(Median(bench.RecordUs)),
            carrierSaveWithoutMedianUs = Round(without.CarrierMedian),
            carrierSaveWithMedianUs = Round(with.CarrierMedian),
            auditDirectUs = Round(Median(bench.RecordUs) + with.CarrierMedian - without.CarrierMedian),
            failedLoginWriteCount = failed.Count,
            failedLoginWriteMedianUs = Round(failed.Median),
            failedLoginWriteMeanUs = Round(failed.Mean),
            failedLoginWriteCpuUs = Round(failed.CpuPerUnit),
            sealedEvents,
            sealPerEventUs = Round(sealUs),
            sealPerEventCpuUs = Round(sealCpuUs),
            loadAverage = File.Exists("/proc/loadavg") ? string.Join(' ', (await File.ReadAllTextAsync("/proc/loadavg", ct)).Split(' ').Take(3)) : null,
        }, CliApp.JsonOutput));
        return CliApp.Ok;
    }

    private static double Round(double value) => Math.Round(value, 1);

    /// <summary>Half-width of a 95% confidence interval of the mean (normal approximation; there are many pairs).</summary>
    private static double Ci95(List<double> values)
    {
        if (values.Count < 2)
        {
            return double.NaN;
        }

        var mean = values.Average();
        var variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return 1.96 * Math.Sqrt(variance / values.Count);
    }

    private static double Median(List<double> values) => BenchApp.Median(values);

    /// <summary>Wall time per unit (µs) and the process's CPU time over the blocks that produced them.</summary>
    private sealed class Samples(int capacity)
    {
        private readonly List<double> _wall = new(capacity);
        private readonly List<double> _carrier = new(capacity);
        private TimeSpan _cpu;

        public int Capacity { get; } = capacity;

        public int Count => _wall.Count;

        public double Median => AuditBench.Median(_wall);

        public double Mean => _wall.Count == 0 ? double.NaN : _wall.Average();

        public double CpuPerUnit => _wall.Count == 0 ? double.NaN : _cpu.TotalMicroseconds / _wall.Count;

        /// <summary>Median wall time of the access-token entry's SaveChanges (which carries the event in variant B).</summary>
        public double CarrierMedian => AuditBench.Median(_carrier);

        public void Add(double wallUs) => _wall.Add(wallUs);

        public void AddCarrier(double us) => _carrier.Add(us);

        public void AddCpu(TimeSpan cpu) => _cpu += cpu;
    }

    private sealed class Runner(IServiceProvider services, CancellationToken ct)
    {
        private readonly IServiceScopeFactory _scopes = services.GetRequiredService<IServiceScopeFactory>();
        private readonly IHttpContextAccessor _http = services.GetRequiredService<IHttpContextAccessor>();
        private readonly TimeProvider _time = services.GetRequiredService<TimeProvider>();
        private readonly TokensOptions _tokens = services.GetRequiredService<IOptions<TokensOptions>>().Value;
        // A reference refresh token's stored payload: the encrypted token, about this long.
        private readonly string _payload = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(1050));
        private string _applicationId = "";
        private User _user = null!;
        private long _failedName;

        public List<double> RecordUs { get; } = [];

        public async Task PrepareAsync()
        {
            var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
            var application = await applications.FindByClientIdAsync(PortcullisHost.BuiltInClientId, ct)
                ?? throw new InvalidOperationException("The built-in client is missing.");
            _applicationId = (await applications.GetIdAsync(application, ct))!;

            // One account with the user role, as a registered user has: every timed login is a new session of it.
            await using var scope = _scopes.CreateAsyncScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
            _user = new User { Id = Guid.CreateVersion7(), UserName = "bench-audit", Email = "bench-audit@example.invalid", CreatedAt = _time.GetUtcNow() };
            Check(await users.CreateAsync(_user));
            Check(await users.AddToRoleAsync(_user, Access.Roles.User));
        }

        private static void Check(IdentityResult result)
        {
            if (!result.Succeeded)
            {
                throw new InvalidOperationException("Creating the bench account failed: " + string.Join("; ", result.Errors.Select(e => e.Description)));
            }
        }

        /// <summary>Runs <paramref name="n"/> logins; returns their mean wall time and the CPU time per login in µs.</summary>
        public async Task<(double Wall, double Cpu)> LoginBlockAsync(bool withAudit, int n, Samples? samples)
        {
            var total = 0.0;
            var cpu = Cpu();
            for (var i = 0; i < n; i++)
            {
                var (us, carrierUs) = await LoginAsync(withAudit, samples is not null);
                samples?.Add(us);
                samples?.AddCarrier(carrierUs);
                total += us;
            }

            cpu = Cpu() - cpu;
            samples?.AddCpu(cpu);
            return (total / n, cpu.TotalMicroseconds / n);
        }

        /// <summary>One login's database work; returns its wall time and that of the SaveChanges that carries the event.</summary>
        private async Task<(double Us, double CarrierUs)> LoginAsync(bool withAudit, bool record)
        {
            await using var scope = _scopes.CreateAsyncScope();
            Request(scope.ServiceProvider);
            var authorizations = scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>();
            var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
            var audit = scope.ServiceProvider.GetRequiredService<AuditLog>();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
            var userId = _user.Id;
            var started = Stopwatch.GetTimestamp();
            double carrierUs;
            using (new Activity("bench.login").Start())
            {
                // As the password grant: the endpoint's identity (claims, roles read from the database), the scopes
                // and audience, then the session (authorization entry), then the event, then sign-in.
                var now = _time.GetUtcNow();
                var identity = await TokenPrincipals.UserIdentityAsync(_user, users, now.ToUnixTimeSeconds());
                var principal = new ClaimsPrincipal(identity);
                principal.SetScopes(PortcullisScopes.OpenId, PortcullisScopes.OfflineAccess);
                principal.SetResources(_tokens.Audience);
                var authorization = await authorizations.CreateAsync(
                    principal, userId.ToString(), _applicationId, AuthorizationTypes.AdHoc, principal.GetScopes(), ct);
                var sessionId = await authorizations.GetIdAsync(authorization, ct);
                principal.SetAuthorizationId(sessionId);
                identity.SetClaim(PortcullisClaims.SessionId, sessionId);
                TokenPrincipals.SetDestinations(principal);
                if (withAudit)
                {
                    var staged = Stopwatch.GetTimestamp();
                    LoginRecords.RecordLoginSucceeded(audit, userId, PortcullisHost.BuiltInClientId, sessionId, principal.GetScopes());
                    if (record)
                    {
                        RecordUs.Add(Stopwatch.GetElapsedTime(staged).TotalMicroseconds);
                    }
                }

                // OpenIddict's sign-in: an entry per token (CreateTokenEntry), the reference refresh token's payload
                // and hashed reference id attached by an update (AttachTokenPayload).
                var carrier = Stopwatch.GetTimestamp();
                await tokens.CreateAsync(TokenDescriptor(TokenTypeHints.AccessToken, principal, sessionId, now, _tokens.AccessTokenLifetime), ct);
                carrierUs = Stopwatch.GetElapsedTime(carrier).TotalMicroseconds;
                var refresh = await tokens.CreateAsync(TokenDescriptor(TokenTypeHints.RefreshToken, principal, sessionId, now, _tokens.RefreshTokenIdleLifetime), ct);
                var update = new OpenIddictTokenDescriptor();
                await tokens.PopulateAsync(update, refresh, ct);
                update.Payload = _payload;
                update.Principal = principal;
                update.ReferenceId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
                await tokens.UpdateAsync(refresh, update, ct);
            }

            var elapsed = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            _http.HttpContext = null;
            return (elapsed, carrierUs);
        }

        /// <summary>Failed logins' audit write for names that are no account (the keyed-hash mask), timed per write.</summary>
        public async Task FailedLoginsAsync(int n, Samples? samples)
        {
            var cpu = Cpu();
            for (var i = 0; i < n; i++)
            {
                await using var scope = _scopes.CreateAsyncScope();
                Request(scope.ServiceProvider);
                var audit = scope.ServiceProvider.GetRequiredService<AuditLog>();
                var name = "bench-nobody-" + (++_failedName).ToString(CultureInfo.InvariantCulture);
                var started = Stopwatch.GetTimestamp();
                using (new Activity("bench.login.failed").Start())
                {
                    await LoginRecords.AuditLoginFailedAsync(audit, name, null, PortcullisHost.BuiltInClientId, ct);
                }

                samples?.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                _http.HttpContext = null;
            }

            samples?.AddCpu(Cpu() - cpu);
        }

        public async Task<(int LoginSucceeded, int LoginFailed)> CountEventsAsync()
        {
            await using var scope = _scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            return (await db.AuditEvents.CountAsync(e => e.EventId == AuditEvents.LoginSucceeded.Id && e.Details!.Contains("\"session\""), ct),
                await db.AuditEvents.CountAsync(e => e.EventId == AuditEvents.LoginFailed.Id && e.Target!.StartsWith("name:"), ct));
        }

        /// <summary>Seals every event written so far, as the background sealer does (up to 1,000 per transaction).</summary>
        public async Task<(long Events, double Us, double CpuUs)> SealAllAsync()
        {
            await using var scope = _scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var events = 0L;
            var cpu = Cpu();
            var started = Stopwatch.GetTimestamp();
            for (var batch = 0; batch < 1000; batch++)
            {
                var sealedNow = await AuditSealer.SealAsync(db, _time.GetUtcNow() + TimeSpan.FromMinutes(1), ct);
                db.ChangeTracker.Clear();
                events += sealedNow;
                if (sealedNow == 0)
                {
                    break;
                }
            }

            var wall = Stopwatch.GetElapsedTime(started);
            cpu = Cpu() - cpu;
            var unsealed = await db.AuditEvents.CountAsync(e => !db.AuditSeals.Any(s => s.EventId == e.Id), ct);
            if (unsealed > 0)
            {
                throw new InvalidOperationException($"{unsealed} audit events were left unsealed.");
            }

            return events == 0 ? (0, double.NaN, double.NaN) : (events, wall.TotalMicroseconds / events, cpu.TotalMicroseconds / events);
        }

        private DefaultHttpContext Request(IServiceProvider scoped)
        {
            var context = new DefaultHttpContext { RequestServices = scoped };
            context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.10");
            _http.HttpContext = context;
            return context;
        }

        private OpenIddictTokenDescriptor TokenDescriptor(string type, ClaimsPrincipal principal, string? authorizationId, DateTimeOffset now, TimeSpan lifetime) =>
            new()
            {
                ApplicationId = _applicationId,
                AuthorizationId = authorizationId,
                CreationDate = now,
                ExpirationDate = now + lifetime,
                Principal = principal,
                Status = Statuses.Valid,
                Subject = principal.GetClaim(Claims.Subject),
                Type = type,
            };

        /// <summary>The process's CPU time, user and kernel, all threads (getrusage: microseconds, not clock ticks).</summary>
        private static TimeSpan Cpu() => Environment.CpuUsage.TotalTime;
    }
}
