using Microsoft.Extensions.Options;

namespace Portcullis.Hosting;

/// <summary>Reports every invalid token setting at once, each saying what to set.</summary>
public sealed class TokenOptionsValidator : IValidateOptions<TokensOptions>
{
    public ValidateOptionsResult Validate(string? name, TokensOptions options)
    {
        var failures = new List<string>();
        if (options.AccessTokenLifetime < TimeSpan.FromMinutes(1) || options.AccessTokenLifetime > TimeSpan.FromMinutes(15))
        {
            failures.Add("Tokens:AccessTokenLifetime must be between 00:01:00 and 00:15:00.");
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > TimeSpan.FromSeconds(60))
        {
            failures.Add("Tokens:ClockSkew must be between 00:00:00 and 00:01:00.");
        }

        if (options.RefreshTokenIdleLifetime <= TimeSpan.Zero || options.RefreshTokenIdleLifetime > options.SessionAbsoluteLifetime)
        {
            failures.Add("Tokens:RefreshTokenIdleLifetime must be positive and at most Tokens:SessionAbsoluteLifetime.");
        }

        if (options.SyncInterval < TimeSpan.FromMilliseconds(50) || options.SyncInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add("Tokens:SyncInterval must be between 00:00:00.050 and 00:01:00.");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("Tokens:Audience must be set.");
        }

        if (options.Issuer is { Length: > 0 } issuer && !Uri.TryCreate(issuer, UriKind.Absolute, out _))
        {
            failures.Add("Tokens:Issuer must be an absolute https:// URL.");
        }

        if (options.MaxTokenBytes is < 1024 or > 65536)
        {
            failures.Add("Tokens:MaxTokenBytes must be between 1024 and 65536.");
        }

        return failures.Count > 0 ? ValidateOptionsResult.Fail(failures) : ValidateOptionsResult.Success;
    }
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
