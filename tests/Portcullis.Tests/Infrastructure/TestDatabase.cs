using Microsoft.EntityFrameworkCore;
using Npgsql;
using Portcullis.Storage;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// Which store the suite runs on. <c>PORTCULLIS_TEST_PROVIDER=Postgres</c> (set by scripts/test.sh for its second
/// run, with the PORTCULLIS_TEST_PG_* connection strings printed by scripts/pg-cluster.sh) gives every server its own
/// fresh PostgreSQL database, cloned from a template migrated once per run by the owner role; the server connects as
/// the least-privilege app role and does not migrate (the PostgreSQL default).
/// </summary>
public static class TestDatabase
{
    public static bool IsPostgres =>
        string.Equals(Environment.GetEnvironmentVariable("PORTCULLIS_TEST_PROVIDER"), "Postgres", StringComparison.OrdinalIgnoreCase);

    public static string AdminConnection => Required("PORTCULLIS_TEST_PG_ADMIN");

    public static string OwnerConnection => Required("PORTCULLIS_TEST_PG_OWNER");

    public static string AppConnection => Required("PORTCULLIS_TEST_PG_APP");

    private const string DatabaseFile = "pg-database";

    /// <summary>The suite's key-encryption key (a PEM file), for servers and commands configured by hand.</summary>
    public static string KeyEncryptionKeyFile => SuiteKeyEncryptionKey.Value;

    private static readonly Lazy<string> SuiteKeyEncryptionKey = new(() =>
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("portcullis-kek-").FullName, "kek.pem");
        Portcullis.Tokens.KeyEncryption.Write(path, Portcullis.Tokens.KeyEncryption.Create());
        return path;
    });

    private static readonly SemaphoreSlim TemplateLock = new(1, 1);
    private static string? _template;

    /// <summary>Settings that point a server (or the CLI) at the database belonging to <paramref name="dataDirectory"/>.</summary>
    public static async Task<Dictionary<string, string?>> SettingsForAsync(string dataDirectory)
    {
        // One key-encryption key for the suite: generating an RSA key for every test server would cost up to a second
        // each. The tests of the default (a file created in the data directory) and of rotation set their own.
        var settings = new Dictionary<string, string?> { ["KeyEncryption:CertificatePath"] = KeyEncryptionKeyFile };
        if (!IsPostgres)
        {
            return settings;
        }

        var file = MarkerFor(dataDirectory);
        string name;
        if (File.Exists(file))
        {
            name = (await File.ReadAllTextAsync(file)).Trim();
        }
        else
        {
            name = "pt_" + Guid.NewGuid().ToString("N");
            var template = await TemplateAsync();
            await AdminAsync($"CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" OWNER portcullis_owner");
            await File.WriteAllTextAsync(file, name);
        }

        settings["Storage:Provider"] = "Postgres";
        settings["Storage:ConnectionString"] = ConnectionFor(dataDirectory, AppConnection)!;
        return settings;
    }

    /// <summary>
    /// Settings for a store of the pass with no schema yet, for tests of <c>portcullis migrate</c>: on SQLite the data
    /// directory (no file yet); on PostgreSQL a new, empty database owned by the owner role, with the owner's
    /// credentials (the app role may not create tables). <see cref="DropAsync"/> drops it.
    /// </summary>
    public static async Task<Dictionary<string, string?>> EmptyStoreAsync(string dataDirectory)
    {
        var settings = new Dictionary<string, string?> { ["KeyEncryption:CertificatePath"] = KeyEncryptionKeyFile };
        if (!IsPostgres)
        {
            return settings;
        }

        var name = "pt_" + Guid.NewGuid().ToString("N");
        await AdminAsync($"CREATE DATABASE \"{name}\" OWNER portcullis_owner");
        await File.WriteAllTextAsync(MarkerFor(dataDirectory), name);
        settings["Storage:Provider"] = "Postgres";
        settings["Storage:ConnectionString"] = ConnectionFor(dataDirectory, OwnerConnection)!;
        return settings;
    }

    /// <summary>The data directory's database with the given role's credentials; null on SQLite or before creation.</summary>
    public static string? ConnectionFor(string dataDirectory, string roleConnection)
    {
        var file = MarkerFor(dataDirectory);
        return IsPostgres && File.Exists(file)
            ? new NpgsqlConnectionStringBuilder(roleConnection) { Database = File.ReadAllText(file).Trim() }.ConnectionString
            : null;
    }

    /// <summary>
    /// The file naming the data directory's database: inside the directory, or beside it when the directory does not
    /// exist yet (start-up tests let Portcullis create it, with its own permissions). Once written, the same file.
    /// </summary>
    private static string MarkerFor(string dataDirectory)
    {
        var inside = Path.Combine(dataDirectory, DatabaseFile);
        var beside = Path.TrimEndingDirectorySeparator(dataDirectory) + "." + DatabaseFile;
        return File.Exists(inside) ? inside
            : File.Exists(beside) || !Directory.Exists(dataDirectory) ? beside
            : inside;
    }

    /// <summary>
    /// The files that hold the data directory's database on disk, for raw scans ("is this secret anywhere in
    /// clear?"). SQLite: <c>portcullis.db</c> and its WAL. PostgreSQL: after a <c>CHECKPOINT</c> (every committed
    /// change, dead row versions included, is then in the heap files), the files of this database under
    /// <c>$PORTCULLIS_PG_DIR/data/base/&lt;oid&gt;</c>. The cluster-wide WAL is left out: it is shared by every test
    /// database and would make each scan read hundreds of megabytes.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RawFilesAsync(string dataDirectory)
    {
        if (!IsPostgres)
        {
            return [.. Directory.EnumerateFiles(dataDirectory, "portcullis.db*")];
        }

        var name = new NpgsqlConnectionStringBuilder(ConnectionFor(dataDirectory, AppConnection)).Database!;
        await AdminAsync("CHECKPOINT");
        var admin = new NpgsqlConnectionStringBuilder(AdminConnection) { Database = "postgres", Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT oid FROM pg_database WHERE datname = @name", connection);
        command.Parameters.AddWithValue("name", name);
        var oid = (uint)(await command.ExecuteScalarAsync())!;
        var cluster = Required("PORTCULLIS_PG_DIR");
        return [.. Directory.EnumerateFiles(Path.Combine(cluster, "data", "base", oid.ToString(System.Globalization.CultureInfo.InvariantCulture)))];
    }

    /// <summary>Drops the data directory's database (servers of that directory must be stopped).</summary>
    public static async Task DropAsync(string dataDirectory)
    {
        if (!IsPostgres || ConnectionFor(dataDirectory, AppConnection) is not { } app)
        {
            return;
        }

        using (var connection = new NpgsqlConnection(app))
        {
            NpgsqlConnection.ClearPool(connection);
        }

        await AdminAsync($"DROP DATABASE IF EXISTS \"{new NpgsqlConnectionStringBuilder(app).Database}\" WITH (FORCE)");
    }

    /// <summary>Creates, migrates (as the owner role) and grants (to the app role) the template, once per run.</summary>
    private static async Task<string> TemplateAsync()
    {
        await TemplateLock.WaitAsync();
        try
        {
            if (_template is not null)
            {
                return _template;
            }

            var name = "pt_template_" + Guid.NewGuid().ToString("N")[..12];
            await AdminAsync($"CREATE DATABASE \"{name}\" OWNER portcullis_owner");
            var owner = new NpgsqlConnectionStringBuilder(OwnerConnection) { Database = name, Pooling = false }.ConnectionString;
            var options = new DbContextOptionsBuilder<PostgresPortcullisDb>().UseNpgsql(owner).UseOpenIddict().Options;
            await using (var db = new PostgresPortcullisDb(options))
            {
                await db.Database.MigrateAsync();
                // The least-privilege grants from docs/deployment.md: data rights only, no DDL, no ownership.
                await db.Database.ExecuteSqlRawAsync(
                    """
                    REVOKE ALL ON SCHEMA public FROM PUBLIC;
                    GRANT USAGE ON SCHEMA public TO portcullis_app;
                    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portcullis_app;
                    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portcullis_app;
                    REVOKE UPDATE, DELETE, TRUNCATE ON "AuditEvents", "AuditSeals" FROM portcullis_app;
                    """);
            }

            // No template is cloned while anyone is connected to it: the template is never opened again.
            _template = name;
            return name;
        }
        finally
        {
            TemplateLock.Release();
        }
    }

    private static async Task AdminAsync(string sql)
    {
        var admin = new NpgsqlConnectionStringBuilder(AdminConnection) { Database = "postgres", Pooling = false }.ConnectionString;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(admin);
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync();
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 20)
            {
                await Task.Delay(50 * attempt); // another clone of the template is in progress
            }
        }
    }

    private static string Required(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"PORTCULLIS_TEST_PROVIDER=Postgres needs {variable}: run `eval \"$(scripts/pg-cluster.sh start)\"` first (see docs/deployment.md).");
}
