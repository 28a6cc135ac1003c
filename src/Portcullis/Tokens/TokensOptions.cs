using Microsoft.Extensions.Options;

namespace Portcullis.Tokens;

/// <summary>Tokens. Section <c>Tokens</c>.</summary>
public sealed class TokensOptions
{
    public const string Section = "Tokens";

    /// <summary>The exact issuer (<c>iss</c>). Default: the first https URL Portcullis listens on.</summary>
    public string? Issuer { get; set; }

    /// <summary>The audience (<c>aud</c>) of access tokens. Default <c>portcullis</c>.</summary>
    public string Audience { get; set; } = "portcullis";

    /// <summary>Access-token lifetime. Default 10 minutes; 1 to 15 minutes allowed (ASVS V7.1.1).</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A refresh token not used for this long dies (idle timeout). Default 14 days.</summary>
    public TimeSpan RefreshTokenIdleLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>A session (the refresh-token family) dies this long after login, however often it rotates. Default 30 days.</summary>
    public TimeSpan SessionAbsoluteLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Accepted clock skew when validating tokens. Default 30 s; at most 60 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often each instance reads new revocations and key changes written by others. Default 2 s.</summary>
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Largest accepted bearer token in bytes. Default 8192.</summary>
    public int MaxTokenBytes { get; set; } = 8192;

    /// <summary>Access tokens remembered after a full validation, so a repeated token skips the signature check
    /// (revocation is still checked on every request). Default 4096 entries; 0 turns the cache off.</summary>
    public int ValidatedTokenCacheSize { get; set; } = 4096;
}

/// <summary>The built-in first-party client. Section <c>Clients</c>.</summary>
public sealed class ClientOptions
{
    public const string Section = "Clients";

    /// <summary>Create (and keep) the public first-party client <c>portcullis</c> for the password and refresh grants. Default true.</summary>
    public bool BuiltInClient { get; set; } = true;
}

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
