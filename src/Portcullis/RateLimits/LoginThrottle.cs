using System.Collections.Concurrent;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Portcullis.Accounts;

namespace Portcullis.RateLimits;

/// <summary>Login throttling. Section <c>LoginThrottle</c>.</summary>
public sealed class LoginThrottleOptions
{
    public const string Section = "LoginThrottle";

    /// <summary>Failed logins for one username before backoff starts. Default 5.</summary>
    public int FreeFailuresPerAccount { get; set; } = 5;

    /// <summary>Backoff after the free failures doubles from this. Default 2 s.</summary>
    public TimeSpan FirstBackoff { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest an account is ever held back: the owner always gets in after this. Default 15 min.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Login attempts one client IP may make per window (credential stuffing). Default 30.</summary>
    public int AttemptsPerIp { get; set; } = 30;

    /// <summary>The per-IP window. Default 5 minutes.</summary>
    public TimeSpan IpWindow { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Slows password guessing without letting anyone lock an owner out for good (AUTH-08, NIST 800-63B-4 §3.2.2):
/// per username, failures beyond a free allowance open a backoff window that doubles up to a ceiling and closes
/// on success; per client IP, a sliding window caps attempts (System.Threading.RateLimiting). Both apply the same
/// way to names that exist and names that do not, so a throttled answer reveals nothing about the account.
/// Every duration here is measured on the monotonic clock (<see cref="TimeProvider.GetTimestamp"/>), never the wall
/// clock: a step of the system clock (NTP, an operator, a VM resumed) must neither stretch a backoff beyond
/// <see cref="LoginThrottleOptions.MaxBackoff"/> nor end it early.
/// </summary>
public sealed class LoginThrottle : IDisposable
{
    private readonly LoginThrottleOptions _options;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, AccountState> _accounts = new(StringComparer.Ordinal);
    private readonly PartitionedRateLimiter<IPAddress> _perIp;
    private long _lastSweep;

    /// <summary>Times are <see cref="TimeProvider.GetTimestamp"/> values: comparable only with each other.</summary>
    private sealed class AccountState
    {
        public int Failures;
        public long BlockedAt;
        public TimeSpan Backoff;
        public long LastFailure;
    }

    public LoginThrottle(IOptions<LoginThrottleOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _perIp = PartitionedRateLimiter.Create<IPAddress, IPAddress>(ip => RateLimitPartition.GetSlidingWindowLimiter(ip, _ => new SlidingWindowRateLimiterOptions
        {
            PermitLimit = _options.AttemptsPerIp,
            Window = _options.IpWindow,
            SegmentsPerWindow = 5,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    public enum Alert { None, CredentialStuffing, BruteForce }

    private readonly ConcurrentDictionary<IPAddress, long> _ipAlerts = new();

    /// <summary>Null when the attempt may proceed; otherwise how long the caller should wait.</summary>
    public TimeSpan? Check(IPAddress? ip, string? username) => Check(ip, username, out _);

    /// <summary>As <see cref="Check(IPAddress?, string?)"/>; <paramref name="alert"/> is set once per episode.</summary>
    public TimeSpan? Check(IPAddress? ip, string? username, out Alert alert)
    {
        alert = Alert.None;
        using (var lease = _perIp.AttemptAcquire(ip ?? IPAddress.None))
        {
            if (!lease.IsAcquired)
            {
                // One alert per IP per window, however many attempts follow.
                var now = _time.GetTimestamp();
                var source = ip ?? IPAddress.None;
                if (!_ipAlerts.TryGetValue(source, out var last) || _time.GetElapsedTime(last, now) > _options.IpWindow)
                {
                    _ipAlerts[source] = now;
                    alert = Alert.CredentialStuffing;
                }

                return lease.TryGetMetadata(MetadataName.RetryAfter, out var retry) ? retry : _options.IpWindow;
            }
        }

        if (Key(username) is { } key && _accounts.TryGetValue(key, out var state))
        {
            lock (state)
            {
                var wait = state.Backoff - _time.GetElapsedTime(state.BlockedAt);
                if (wait > TimeSpan.Zero)
                {
                    // Even a timestamp source that ran backwards cannot stretch it past the backoff set (≤ MaxBackoff).
                    return wait > state.Backoff ? state.Backoff : wait;
                }
            }
        }

        return null;
    }

    /// <summary>Records a failure; returns <see cref="Alert.BruteForce"/> when it starts the account's backoff.</summary>
    public Alert Failed(string? username)
    {
        if (Key(username) is not { } key)
        {
            return Alert.None;
        }

        var raised = Alert.None;
        var now = _time.GetTimestamp();
        var state = _accounts.GetOrAdd(key, _ => new AccountState());
        lock (state)
        {
            // Failures long ago no longer count: an owner returning later starts fresh.
            if (_time.GetElapsedTime(state.LastFailure, now) > _options.MaxBackoff * 2)
            {
                state.Failures = 0;
            }

            state.Failures++;
            state.LastFailure = now;
            var over = state.Failures - _options.FreeFailuresPerAccount;
            if (over == 1)
            {
                raised = Alert.BruteForce;
            }

            if (over > 0)
            {
                state.Backoff = TimeSpan.FromTicks(Math.Min(_options.MaxBackoff.Ticks, _options.FirstBackoff.Ticks << Math.Min(over - 1, 20)));
                state.BlockedAt = now;
            }
        }

        Sweep(now);
        return raised;
    }

    public void Succeeded(string? username)
    {
        if (Key(username) is { } key)
        {
            _accounts.TryRemove(key, out _);
        }
    }

    /// <summary>Memory stays bounded: idle entries go once their failures no longer count.</summary>
    private void Sweep(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (_time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1) || Interlocked.CompareExchange(ref _lastSweep, now, last) != last)
        {
            return;
        }

        foreach (var (key, state) in _accounts)
        {
            if (_time.GetElapsedTime(Volatile.Read(ref state.LastFailure), now) > _options.MaxBackoff * 2)
            {
                _accounts.TryRemove(key, out _);
            }
        }

        foreach (var (ip, at) in _ipAlerts)
        {
            if (_time.GetElapsedTime(at, now) > _options.IpWindow)
            {
                _ipAlerts.TryRemove(ip, out _);
            }
        }
    }

    private static string? Key(string? username)
    {
        if (string.IsNullOrEmpty(username) || username.Length > 256)
        {
            return username is null ? null : "#overlong";
        }

        try
        {
            return UsernameRules.Key(username);
        }
        catch (ArgumentException)
        {
            return "#invalid"; // not normalizable (lone surrogates): one shared bucket
        }
    }

    public void Dispose() => _perIp.Dispose();
}
