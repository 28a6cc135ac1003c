using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Portcullis.Audit;
using Portcullis.Hosting;

namespace Portcullis.Accounts;

/// <summary>How many password hashes and verifications run at once. Section <c>PasswordHashing</c>.</summary>
public sealed class PasswordHashingOptions
{
    public const string Section = "PasswordHashing";

    /// <summary>Hashes and verifications running at once. Default: the number of processors.</summary>
    public int MaxConcurrent { get; set; } = Environment.ProcessorCount;

    /// <summary>Requests that may wait for a free slot; beyond this they get 503 at once. Default 4 × the number of processors.</summary>
    public int QueueLimit { get; set; } = 4 * Environment.ProcessorCount;

    /// <summary>The longest a request waits in the queue before it gets 503. Default 1 s.</summary>
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>Reports every invalid <c>PasswordHashing</c> setting at once, each saying what to set.</summary>
public sealed class PasswordHashingOptionsValidator : IValidateOptions<PasswordHashingOptions>
{
    public ValidateOptionsResult Validate(string? name, PasswordHashingOptions options)
    {
        var failures = new List<string>();
        if (options.MaxConcurrent is < 1 or > 1024)
        {
            failures.Add("PasswordHashing:MaxConcurrent must be between 1 and 1024 (default: the number of processors).");
        }

        if (options.QueueLimit is < 0 or > 10_000)
        {
            failures.Add("PasswordHashing:QueueLimit must be between 0 and 10000.");
        }

        if (options.QueueTimeout < TimeSpan.FromMilliseconds(10) || options.QueueTimeout > TimeSpan.FromSeconds(30))
        {
            failures.Add("PasswordHashing:QueueTimeout must be between 00:00:00.010 and 00:00:30.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// Admission to password hashing (Argon2id costs a core and <c>Accounts:Argon2MemoryKiB</c> for each run): at most
/// <see cref="PasswordHashingOptions.MaxConcurrent"/> at once, a short queue that waits asynchronously (no thread is
/// held while waiting), and past that an immediate refusal, before any hashing. So a login flood costs at most
/// MaxConcurrent × the Argon2 memory, and health checks and authenticated calls keep their threads and cores.
/// <para>
/// Every hash a request can trigger runs inside <see cref="RunAsync{T}"/>; <see cref="Argon2PasswordHasher"/> refuses
/// to hash in a request outside it, so an endpoint that forgets the gate fails its tests instead of reopening the
/// flood. Admission does not depend on the account, so a refusal says nothing about it.
/// </para>
/// </summary>
public sealed partial class PasswordHashingLimiter : IDisposable
{
    /// <summary>The policy name on the refusal's metric (<c>portcullis.ratelimit.rejections</c>) and audit event.</summary>
    public const string PolicyName = "password-hashing";

    // Set inside RunAsync only: an async method's changes to an AsyncLocal flow into what it awaits and are undone
    // for its caller when it returns, so "admitted" never leaks past the permit.
    private static readonly AsyncLocal<bool> InsidePermit = new();

    private static readonly TimeSpan LogInterval = TimeSpan.FromMinutes(1);

    private readonly ConcurrencyLimiter _limiter;
    private readonly PasswordHashingOptions _options;
    private readonly IHttpContextAccessor _http;
    private readonly RejectionAggregator _rejections;
    private readonly TimeProvider _time;
    private readonly ILogger<PasswordHashingLimiter> _logger;
    private long _lastLogged = long.MinValue;

    public PasswordHashingLimiter(
        IOptions<PasswordHashingOptions> options, IHttpContextAccessor http, RejectionAggregator rejections,
        TimeProvider time, ILogger<PasswordHashingLimiter> logger)
    {
        _options = options.Value;
        _http = http;
        _rejections = rejections;
        _time = time;
        _logger = logger;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = _options.MaxConcurrent,
            QueueLimit = _options.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
    }

    /// <summary>The result of <see cref="RunAsync{T}"/>: <see cref="Admitted"/> false means nothing ran.</summary>
    public readonly record struct Admission<T>(bool Admitted, T? Value);

    /// <summary>
    /// Runs <paramref name="work"/> (which hashes or verifies passwords) holding one permit, or — when the queue is
    /// full or the wait exceeds <c>PasswordHashing:QueueTimeout</c> — does not run it, records the refusal and
    /// returns not admitted. Work that hashes twice (verify the old password, hash the new) does so under one permit:
    /// one at a time, so the memory bound holds. Keep database writes outside: a permit is a core, not a lock.
    /// </summary>
    public async Task<Admission<T>> RunAsync<T>(Func<Task<T>> work, CancellationToken ct)
    {
        using var lease = await AcquireAsync(ct);
        if (lease is null)
        {
            Refused();
            return new Admission<T>(false, default);
        }

        InsidePermit.Value = true;
        // On a thread of its own, not the pool's: Argon2 blocks its thread for the whole hash, and MaxConcurrent
        // (the number of cores by default) blocked pool threads would leave the pool's minimum with nothing for
        // health checks and signed-in calls until it grows. Work up to its first real await runs on that thread,
        // so callers look the account up first and hash in the synchronous part.
        var value = await Task.Factory.StartNew(work, ct, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default).Unwrap();
        return new Admission<T>(true, value);
    }

    private async ValueTask<RateLimitLease?> AcquireAsync(CancellationToken ct)
    {
        // The common case, a free slot and nobody waiting, without a timer.
        var lease = _limiter.AttemptAcquire();
        if (lease.IsAcquired)
        {
            return lease;
        }

        lease.Dispose();
        // The wait is bounded on the TimeProvider's timer (monotonic, and the tests' fake clock), not the wall clock.
        using var timeout = new CancellationTokenSource(_options.QueueTimeout, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            // A full queue answers at once with a failed lease; a queued request waits here without a thread.
            lease = await _limiter.AcquireAsync(1, wait.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return null; // waited QueueTimeout: refused like a full queue (the client's own abort propagates)
        }

        if (lease.IsAcquired)
        {
            return lease;
        }

        lease.Dispose();
        return null;
    }

    /// <summary>Throws when a request hashes outside <see cref="RunAsync{T}"/>: a bug, never an expected outcome.</summary>
    internal void EnsureAdmitted()
    {
        // Outside a request (the CLI: admin create, seed, bench) nobody remote can multiply the work.
        if (!InsidePermit.Value && _http.HttpContext is not null)
        {
            throw new InvalidOperationException(
                "A password was hashed in a request without a PasswordHashingLimiter permit: wrap the work in PasswordHashingLimiter.RunAsync.");
        }
    }

    /// <summary>Seconds a refused client should wait: a queue's worth of work takes at most about QueueTimeout.</summary>
    public string RetryAfterSeconds =>
        Math.Max(1, (int)Math.Ceiling(_options.QueueTimeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The refusal of every endpoint that hashes, the token endpoint included (like the login throttle's 429 there):
    /// 503 problem+json with Retry-After. The same text whoever the account is; nothing from the request is echoed.
    /// </summary>
    public ProblemHttpResult Busy(HttpContext http)
    {
        http.Response.Headers.RetryAfter = RetryAfterSeconds;
        return TypedResults.Problem(
            statusCode: StatusCodes.Status503ServiceUnavailable,
            title: "Too many password checks are in progress; try again shortly.",
            type: ProblemTypes.Busy);
    }

    private void Refused()
    {
        // Counted (portcullis.ratelimit.rejections{policy="password-hashing"}) and audited as one row per route and
        // client IP per minute with the count: a flood of refusals must not become a flood of audit rows or log lines.
        var http = _http.HttpContext;
        var route = http?.GetEndpoint() is RouteEndpoint endpoint ? endpoint.RoutePattern.RawText ?? "" : "(none)";
        _rejections.Rejected(route, PolicyName, http?.Connection.RemoteIpAddress?.ToString() ?? "(none)");

        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastLogged);
        if ((last == long.MinValue || _time.GetElapsedTime(last, now) >= LogInterval)
            && Interlocked.CompareExchange(ref _lastLogged, now, last) == last)
        {
            LogAtCapacity(_logger, _options.MaxConcurrent, _options.QueueLimit);
        }
    }

    [LoggerMessage(EventId = EventIds.Accounts.PasswordHashingAtCapacity, EventName = "password_hashing_at_capacity", Level = LogLevel.Warning,
        Message = "Password hashing is at capacity ({MaxConcurrent} running, {QueueLimit} waiting): further requests get 503 (logged at most once a minute; the metric and the audit trail count each).")]
    private static partial void LogAtCapacity(ILogger logger, int maxConcurrent, int queueLimit);

    public void Dispose() => _limiter.Dispose();
}
