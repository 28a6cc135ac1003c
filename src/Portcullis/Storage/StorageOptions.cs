using Microsoft.Extensions.Options;

namespace Portcullis.Storage;

/// <summary>Where state lives. Section <c>Storage</c>.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";

    public const string Sqlite = "Sqlite";
    public const string Postgres = "Postgres";

    /// <summary><c>Sqlite</c> (default) or <c>Postgres</c> (PostgreSQL 15+, needs <see cref="ConnectionString"/>).</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>Directory for the SQLite file, the development certificate and other state. Default <c>./data</c>.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>
    /// SQLite: overrides the default <c>Data Source={DataDirectory}/portcullis.db</c>. PostgreSQL: required, an Npgsql
    /// connection string (<c>Host=…;Database=…;Username=…;Password=…;SSL Mode=VerifyFull</c>).
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Apply migrations at start. Default: true on SQLite, false on PostgreSQL (run <c>portcullis migrate</c>).</summary>
    public bool? AutoMigrate { get; set; }

    /// <summary>
    /// Seconds a database connection attempt or command may take before the request fails with 503. Default 15.
    /// </summary>
    public int TimeoutSeconds { get; set; } = 15;

    /// <summary>
    /// SQLite only: <c>Full</c> (default) or <c>Normal</c>, SQLite's <c>synchronous</c> setting in WAL mode. <c>Full</c>
    /// flushes the log to disk at every commit, so a committed change — a revocation, a password change, an audit
    /// event — survives a power loss; on an ordinary disk that costs a few milliseconds per commit and bounds all
    /// writes to a few hundred commits per second. <c>Normal</c> flushes only at checkpoints: the database cannot be
    /// corrupted and nothing is lost when the process crashes, but a power loss or kernel crash can roll back the
    /// last commits. See docs/deployment.md.
    /// </summary>
    public string SqliteSynchronous { get; set; } = SynchronousFull;

    public const string SynchronousFull = "Full";
    public const string SynchronousNormal = "Normal";

    public bool IsPostgres => string.Equals(Provider, Postgres, StringComparison.OrdinalIgnoreCase);

    /// <summary>The effective auto-migration setting: explicit, else the provider's default.</summary>
    public bool ShouldAutoMigrate => AutoMigrate ?? !IsPostgres;
}

public sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = new List<string>();
        if (!options.IsPostgres && !string.Equals(options.Provider, StorageOptions.Sqlite, StringComparison.OrdinalIgnoreCase))
        {
            failures.Add("Storage:Provider must be 'Sqlite' or 'Postgres'.");
        }

        if (options.IsPostgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("Storage:ConnectionString must be set when Storage:Provider is 'Postgres' (e.g. Host=db.example;Database=portcullis;Username=portcullis_app;SSL Mode=VerifyFull).");
        }

        if (options.TimeoutSeconds is < 1 or > 300)
        {
            failures.Add("Storage:TimeoutSeconds must be between 1 and 300.");
        }

        if (!string.Equals(options.SqliteSynchronous, StorageOptions.SynchronousFull, StringComparison.OrdinalIgnoreCase) &&
            !string.Equals(options.SqliteSynchronous, StorageOptions.SynchronousNormal, StringComparison.OrdinalIgnoreCase))
        {
            failures.Add("Storage:SqliteSynchronous must be 'Full' or 'Normal'.");
        }

        return failures.Count > 0 ? ValidateOptionsResult.Fail(failures) : ValidateOptionsResult.Success;
    }
}
