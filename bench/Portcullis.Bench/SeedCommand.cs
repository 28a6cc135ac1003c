using System.CommandLine;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Portcullis.Access;
using Portcullis.Audit;
using Portcullis.Cli;
using Portcullis.Storage;

namespace Portcullis.Bench;

/// <summary>
/// The scale benchmark's loader (issue 8: 1 M users, 10 M audit events):
/// <c>seed --users N --audit-events M --password-stdin</c> writes rows straight into the database in batches
/// (prepared ADO.NET inserts whose parameters come from the EF Core model, so every value is stored exactly as EF
/// stores it), not through the HTTP API.
/// <list type="bullet">
/// <item>Users <c>seed-0000001</c>… with the role <c>user</c> and one Argon2id hash of the password read from standard
/// input, computed once and shared: every seeded user can log in with it.</item>
/// <item>Audit events from the catalogue with realistic actors (seeded users, <c>anonymous</c>, <c>operator</c>, the
/// built-in client), client IPs and times spread evenly over <c>--days</c> up to now, each <b>sealed</b> into the hash
/// chain in the same transaction, continuing from the last seal: <c>audit verify</c> stays intact.</item>
/// <item>Either store. The scale target is measured on SQLite; on PostgreSQL the event ids are taken from the
/// table's identity sequence (<c>nextval</c>, which the application role may call), so later events the server
/// writes never collide with seeded ones, and seals are written under the audit chain's lock.</item>
/// <item>Refuses a database with users it did not seed (a real installation) unless <c>--force</c>. Stop the server
/// first: the seeder writes the audit chain itself.</item>
/// </list>
/// </summary>
public static class SeedCommand
{
    public const string UserPrefix = "seed-";

    private static readonly Option<int> Users = new("--users") { Description = "Users to add (0-10,000,000).", DefaultValueFactory = _ => 0 };
    private static readonly Option<long> Events = new("--audit-events") { Description = "Audit events to add (0-100,000,000).", DefaultValueFactory = _ => 0 };
    private static readonly Option<int> Days = new("--days") { Description = "The events span this many days up to now (1-3650).", DefaultValueFactory = _ => 365 };
    private static readonly Option<int> Batch = new("--batch") { Description = "Rows per transaction.", DefaultValueFactory = _ => 20_000 };
    private static readonly Option<bool> PasswordStdin = new("--password-stdin") { Description = "Read the seeded users' shared password from standard input." };
    private static readonly Option<bool> Force = new("--force") { Description = "Seed even though the database has users the seeder did not create." };

    public static Command Create(CliIo io)
    {
        var seed = new Command("seed", "Bulk-insert users and sealed audit events for the scale benchmark (not for production data).");
        foreach (var option in new Option[] { Users, Events, Days, Batch, PasswordStdin, Force })
        {
            seed.Options.Add(option);
        }

        seed.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, services => RunAsync(parse, io, services, ct)));
        return seed;
    }

    private static async Task<int> RunAsync(ParseResult parse, CliIo io, IServiceProvider services, CancellationToken ct)
    {
        var users = parse.GetValue(Users);
        var events = parse.GetValue(Events);
        var days = parse.GetValue(Days);
        var batch = parse.GetValue(Batch);
        if (users is < 0 or > 10_000_000 || events is < 0 or > 100_000_000 || days is < 1 or > 3650 || batch is < 1 or > 1_000_000)
        {
            await io.Error.WriteLineAsync("error: --users 0-10000000, --audit-events 0-100000000, --days 1-3650, --batch 1-1000000.");
            return CliApp.Usage;
        }

        var db = services.GetRequiredService<PortcullisDb>();
        var realUsers = await db.Users.CountAsync(u => !u.UserName!.StartsWith(UserPrefix), ct);
        if (realUsers > 0 && !parse.GetValue(Force))
        {
            await io.Error.WriteLineAsync($"error: the database has {realUsers} user(s) the seeder did not create; this is a benchmark tool. Use --force to seed anyway.");
            return CliApp.Invalid;
        }

        string? passwordHash = null;
        if (users > 0)
        {
            var password = parse.GetValue(PasswordStdin) ? await io.ReadSecretAsync(true, "") : null;
            if (string.IsNullOrEmpty(password))
            {
                await io.Error.WriteLineAsync("error: seeding users needs --password-stdin (the shared password, one line on standard input).");
                return CliApp.Usage;
            }

            passwordHash = services.GetRequiredService<IPasswordHasher<User>>().HashPassword(new User(), password);
        }

        var seeder = new Seeder(db, services.GetRequiredService<ILookupNormalizer>(), batch, ct);
        var started = Stopwatch.GetTimestamp();
        // Progress on standard error (a bar on a terminal, plain lines otherwise); standard output stays the JSON result.
        var userIds = users > 0
            ? await CliProgress.RunAsync(io, "seed users", "users", users, report => seeder.UsersAsync(users, passwordHash!, report))
            : [];
        var usersElapsed = Stopwatch.GetElapsedTime(started);
        if (events > 0 && userIds.Count == 0)
        {
            userIds = await db.Users.AsNoTracking().Where(u => u.UserName!.StartsWith(UserPrefix)).Select(u => u.Id).Take(1_000_000).ToListAsync(ct);
        }

        var (firstEvent, lastEvent, sampleActor) = events > 0
            ? await CliProgress.RunAsync(io, "seed audit events", "events", events, report => seeder.EventsAsync(events, days, userIds, report))
            : (0L, 0L, (string?)null);
        var total = Stopwatch.GetElapsedTime(started);
        await io.Out.WriteLineAsync(JsonSerializer.Serialize(new
        {
            users,
            usersSeconds = Math.Round(usersElapsed.TotalSeconds, 1),
            auditEvents = events,
            auditSeconds = Math.Round((total - usersElapsed).TotalSeconds, 1),
            firstEventId = firstEvent,
            lastEventId = lastEvent,
            sampleActor,
        }, CliApp.JsonOutput));
        return CliApp.Ok;
    }

    private sealed class Seeder(PortcullisDb db, ILookupNormalizer normalizer, int batch, CancellationToken ct)
    {
        private readonly Random _random = new(20261127); // the same data for the same arguments

        public async Task<List<Guid>> UsersAsync(int count, string passwordHash, Action<long> report)
        {
            var userRole = await db.Roles.AsNoTracking().Where(r => r.Name == Roles.User).Select(r => r.Id).SingleAsync(ct);
            var start = await db.Users.CountAsync(u => u.UserName!.StartsWith(UserPrefix), ct);
            var ids = new List<Guid>(count);
            var created = DateTimeOffset.UtcNow - TimeSpan.FromDays(400);
            await using var users = await Inserter.CreateAsync(db, typeof(User), ct);
            await using var roles = await Inserter.CreateAsync(db, typeof(IdentityUserRole<Guid>), ct);
            for (var i = 0; i < count;)
            {
                await using var tx = await db.Database.BeginTransactionAsync(ct);
                users.Enlist(tx);
                roles.Enlist(tx);
                for (var n = 0; n < batch && i < count; n++, i++)
                {
                    var name = UserPrefix + (start + i + 1).ToString("D7", CultureInfo.InvariantCulture);
                    var email = name + "@seed.example";
                    var user = new User
                    {
                        Id = Guid.CreateVersion7(),
                        UserName = name,
                        NormalizedUserName = normalizer.NormalizeName(name),
                        Email = email,
                        NormalizedEmail = normalizer.NormalizeEmail(email),
                        EmailConfirmed = false,
                        PasswordHash = passwordHash,
                        SecurityStamp = Guid.NewGuid().ToString("N"),
                        ConcurrencyStamp = Guid.NewGuid().ToString(),
                        LockoutEnabled = false,
                        CreatedAt = created + TimeSpan.FromSeconds(i * 30L),
                    };
                    await users.InsertAsync(user);
                    await roles.InsertAsync(new IdentityUserRole<Guid> { UserId = user.Id, RoleId = userRole });
                    ids.Add(user.Id);
                }

                await tx.CommitAsync(ct);
                report(i);
            }

            return ids;
        }

        public async Task<(long First, long Last, string? SampleActor)> EventsAsync(long count, int days, List<Guid> userIds, Action<long> report)
        {
            // Seal what is already there (as `audit verify` does), so the seeded events continue the chain.
            while (await AuditSealer.SealAsync(db, DateTimeOffset.UtcNow, ct) > 0)
            {
            }

            var lastSeal = await db.AuditSeals.AsNoTracking().OrderByDescending(s => s.Sequence).FirstOrDefaultAsync(ct);
            var lastSealed = lastSeal?.EventId ?? 0;
            var unsealed = await db.AuditEvents.CountAsync(e => e.Id > lastSealed, ct);
            if (unsealed > 0)
            {
                // The chain is in event-id order; the sealer must catch up before new ids are sealed after old ones.
                throw new Hosting.StartupException($"{unsealed} audit event(s) are not sealed yet (is a server writing to this database? stop it before seeding).");
            }

            var ids = await EventIds.CreateAsync(db, ct);
            var sequence = lastSeal?.Sequence ?? 0;
            var previous = lastSeal?.Hash ?? AuditChain.Genesis;
            var end = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1);
            var step = TimeSpan.FromDays(days).Ticks / count;
            long first = 0, last = 0;
            var clientActor = $"client:{Hosting.PortcullisHost.BuiltInClientId}";
            string? sample = null;
            await using var eventsInsert = await Inserter.CreateAsync(db, typeof(AuditEvent), ct);
            await using var sealsInsert = await Inserter.CreateAsync(db, typeof(AuditSeal), ct);
            for (long i = 0; i < count;)
            {
                // The chain's lock, as the sealer takes it: a running server's sealer waits instead of forking the
                // chain (SQLite: the write lock; PostgreSQL: the advisory lock).
                await using var tx = await StoreLocks.BeginLockedAsync(db, StoreLocks.Name.AuditChain, ct);
                eventsInsert.Enlist(tx);
                sealsInsert.Enlist(tx);
                var reserved = await ids.NextAsync((int)Math.Min(batch, count - i));
                for (var n = 0; n < reserved.Length; n++, i++)
                {
                    var user = userIds.Count > 0 ? $"user:{userIds[_random.Next(userIds.Count)]}" : "anonymous";
                    // Whole milliseconds: what both providers store exactly (the seal hashes the stored value).
                    var at = end - TimeSpan.FromTicks(step * (count - 1 - i));
                    var e = NewEvent(reserved[n], new DateTimeOffset(at.UtcTicks - (at.UtcTicks % TimeSpan.TicksPerMillisecond), TimeSpan.Zero), user, clientActor);
                    sequence++;
                    var hash = AuditChain.Compute(e, sequence, previous);
                    await eventsInsert.InsertAsync(e);
                    await sealsInsert.InsertAsync(new AuditSeal { Sequence = sequence, EventId = e.Id, PreviousHash = previous, Hash = hash });
                    previous = hash;
                    first = first == 0 ? e.Id : first;
                    last = e.Id;
                    if (e.Actor.StartsWith("user:", StringComparison.Ordinal))
                    {
                        sample = e.Actor;
                    }
                }

                await tx.CommitAsync(ct);
                report(i);
            }

            return (first, last, sample);
        }

        private AuditEvent NewEvent(long id, DateTimeOffset at, string user, string client)
        {
            var ip = $"10.{_random.Next(256)}.{_random.Next(256)}.{_random.Next(1, 255)}";
            Span<byte> traceBytes = stackalloc byte[16];
            _random.NextBytes(traceBytes);
            var trace = Convert.ToHexStringLower(traceBytes);
            var roll = _random.Next(100);
            var (definition, outcome, actor, target, details) = roll switch
            {
                < 40 => (AuditEvents.LoginSucceeded, AuditOutcomes.Success, user, user, """{"client_id":"portcullis"}"""),
                < 65 => (AuditEvents.TokenRefreshed, AuditOutcomes.Success, user, user, """{"client_id":"portcullis"}"""),
                < 77 => (AuditEvents.LoginFailed, AuditOutcomes.Failure, "anonymous", "name:se***", null),
                < 85 => (AuditEvents.TokenIssued, AuditOutcomes.Success, client, client, """{"grant_type":"client_credentials"}"""),
                < 91 => (AuditEvents.TokenRevoked, AuditOutcomes.Success, user, user, null),
                < 94 => (AuditEvents.ProfileChanged, AuditOutcomes.Success, user, user, """{"fields":["email"]}"""),
                < 96 => (AuditEvents.PasswordChanged, AuditOutcomes.Success, user, user, null),
                < 98 => (AuditEvents.RateLimited, AuditOutcomes.Failure, "anonymous", "route:/connect/token", """{"count":12}"""),
                _ => (AuditEvents.UserDisabled, AuditOutcomes.Success, "operator", user, null),
            };
            return new AuditEvent
            {
                Id = id,
                Timestamp = at,
                EventId = definition.Id,
                Name = definition.Name,
                Outcome = outcome,
                Actor = actor,
                ClientIp = actor == "operator" ? null : ip,
                Target = target,
                TraceId = trace,
                Details = details,
            };
        }
    }

    /// <summary>
    /// Audit event ids for explicit inserts (the seal hashes the id, so it must be known before the row is written).
    /// SQLite: after the largest id (the rowid). PostgreSQL: drawn from the column's identity sequence in batches,
    /// so the sequence moves past them and the server's own inserts never reuse one; setting the sequence instead
    /// would need a right the application role does not have.
    /// </summary>
    private sealed class EventIds
    {
        private readonly PortcullisDb _db;
        private readonly (string Table, string Column)? _sequence;
        private readonly CancellationToken _ct;
        private long _next;

        private EventIds(PortcullisDb db, (string, string)? sequence, long next, CancellationToken ct)
        {
            _db = db;
            _sequence = sequence;
            _next = next;
            _ct = ct;
        }

        public static async Task<EventIds> CreateAsync(PortcullisDb db, CancellationToken ct)
        {
            if (db.Database.IsSqlite())
            {
                return new EventIds(db, null, (await db.AuditEvents.MaxAsync(e => (long?)e.Id, ct) ?? 0) + 1, ct);
            }

            var entity = db.Model.FindEntityType(typeof(AuditEvent))!;
            var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            // pg_get_serial_sequence reads the table as SQL text (so quoted: the names are mixed case), the column as a name.
            var quoted = db.GetService<ISqlGenerationHelper>().DelimitIdentifier(table.Name, table.Schema);
            return new EventIds(db, (quoted, entity.FindProperty(nameof(AuditEvent.Id))!.GetColumnName(table)!), 0, ct);
        }

        public async Task<long[]> NextAsync(int count)
        {
            if (_sequence is not { } sequence)
            {
                var ids = new long[count];
                for (var i = 0; i < count; i++)
                {
                    ids[i] = _next++;
                }

                return ids;
            }

            await using var command = _db.Database.GetDbConnection().CreateCommand();
            command.Transaction = _db.Database.CurrentTransaction?.GetDbTransaction();
            command.CommandText = "SELECT nextval(pg_get_serial_sequence(@t, @c)) FROM generate_series(1, @n)";
            foreach (var (name, value) in new (string, object)[] { ("t", sequence.Table), ("c", sequence.Column), ("n", count) })
            {
                var parameter = command.CreateParameter();
                parameter.ParameterName = name;
                parameter.Value = value;
                command.Parameters.Add(parameter);
            }

            var reserved = new List<long>(count);
            await using (var reader = await command.ExecuteReaderAsync(_ct))
            {
                while (await reader.ReadAsync(_ct))
                {
                    reserved.Add(reader.GetInt64(0));
                }
            }

            // The chain is in id order; one session's values from a sequence rise, and sorting makes sure of it.
            reserved.Sort();
            return [.. reserved];
        }
    }

    /// <summary>
    /// One prepared INSERT for an entity type, columns and parameters taken from the EF Core model (table and column
    /// names, value converters, provider parameter types), so rows are stored exactly as EF would store them.
    /// </summary>
    private sealed class Inserter : IAsyncDisposable
    {
        private readonly DbCommand _command;
        private readonly (IClrPropertyGetter Getter, RelationalTypeMapping Mapping, DbParameter Parameter)[] _columns;

        private Inserter(DbCommand command, (IClrPropertyGetter, RelationalTypeMapping, DbParameter)[] columns)
        {
            _command = command;
            _columns = columns;
        }

        public static async Task<Inserter> CreateAsync(PortcullisDb db, Type clrType, CancellationToken ct)
        {
            var entity = db.Model.FindEntityType(clrType) ?? throw new InvalidOperationException($"{clrType.Name} is not in the model.");
            var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
            var sql = db.GetService<ISqlGenerationHelper>();
            await db.Database.OpenConnectionAsync(ct);
            if (db.Database.IsSqlite())
            {
                // A benchmark tool: durability per batch is not needed, speed is.
                await db.Database.ExecuteSqlRawAsync("PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;", ct);
            }

            var command = db.Database.GetDbConnection().CreateCommand();
            var columns = new List<(IProperty, RelationalTypeMapping, DbParameter)>();
            foreach (var property in entity.GetProperties())
            {
                var mapping = (RelationalTypeMapping)property.GetTypeMapping();
                var parameter = mapping.CreateParameter(command, "p" + columns.Count.ToString(CultureInfo.InvariantCulture), null, nullable: true);
                command.Parameters.Add(parameter);
                columns.Add((property, mapping, parameter));
            }

            command.CommandText = $"INSERT INTO {sql.DelimitIdentifier(table.Name, table.Schema)} ("
                + string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c.Item1.GetColumnName(table)!)))
                + ") VALUES (" + string.Join(", ", columns.Select(c => sql.GenerateParameterName(c.Item3.ParameterName))) + ")";
            command.Prepare();
            return new Inserter(command, [.. columns.Select(c => (c.Item1.GetGetter(), c.Item2, c.Item3))]);
        }

        public void Enlist(IDbContextTransaction tx) => _command.Transaction = tx.GetDbTransaction();

        public Task InsertAsync(object row)
        {
            foreach (var (getter, mapping, parameter) in _columns)
            {
                var value = getter.GetClrValueUsingContainingEntity(row);
                parameter.Value = value is null ? DBNull.Value : mapping.Converter?.ConvertToProvider(value) ?? value;
            }

            // Synchronous: SQLite's driver is synchronous anyway, and millions of tiny awaits cost more than the insert.
            _command.ExecuteNonQuery();
            return Task.CompletedTask;
        }

        public async ValueTask DisposeAsync() => await _command.DisposeAsync();
    }
}
