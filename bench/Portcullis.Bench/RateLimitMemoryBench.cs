using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Portcullis.Cli;
using Portcullis.RateLimits;

namespace Portcullis.Bench;

/// <summary>
/// <c>ratelimit --keys N</c> (bench/ratelimit-memory.sh): N distinct client IPs each make one request
/// through the real registry and store (an <c>anonymous</c> policy of 100 per <c>--window</c> per IP, plus the
/// global cap, as the before-authentication phase runs them), and it prints JSON with the managed heap and RSS before, after, and
/// after the library's idle eviction. Nothing is served, read or written.
/// </summary>
public static class RateLimitMemoryBench
{
    private static readonly Option<int> Keys = new("--keys") { Description = "Distinct partition keys (1-10000000).", DefaultValueFactory = _ => 1_000_000 };
    private static readonly Option<int> IdleWait = new("--idle-wait") { Description = "Seconds to wait for idle eviction at most (1-600).", DefaultValueFactory = _ => 150 };
    private static readonly Option<int> Window = new("--window") { Description = "The per-IP fixed window in seconds (1-3600); partitions stay live until it ends.", DefaultValueFactory = _ => 60 };

    public static Command Create(CliIo io)
    {
        var command = new Command("ratelimit", "Memory of N distinct rate-limit partitions, before and after idle eviction.");
        command.Options.Add(Keys);
        command.Options.Add(IdleWait);
        command.Options.Add(Window);
        command.SetAction(async (parse, ct) =>
        {
            var keys = parse.GetValue(Keys);
            var idleWait = parse.GetValue(IdleWait);
            var window = parse.GetValue(Window);
            if (keys is < 1 or > 10_000_000 || idleWait is < 1 or > 600 || window is < 1 or > 3600)
            {
                await io.Error.WriteLineAsync("error: --keys must be 1-10000000, --idle-wait 1-600 and --window 1-3600.");
                return CliApp.Usage;
            }

            var result = await RunAsync(keys, TimeSpan.FromSeconds(window), TimeSpan.FromSeconds(idleWait), ct);
            await io.Out.WriteLineAsync(JsonSerializer.Serialize(result, CliApp.JsonOutput));
            return result.Admitted == keys ? CliApp.Ok : CliApp.Failed;
        });
        return command;
    }

    public sealed record Snapshot(double ManagedMiB, double RssMiB);

    public sealed record Result(int Keys, string Policy, int Admitted, double SecondsToCreate, double MicrosecondsPerKey, Snapshot Before, Snapshot After, double BytesPerKey, Snapshot AfterEviction, double SecondsToEvict);

    public static async Task<Result> RunAsync(int keys, TimeSpan window, TimeSpan idleWait, CancellationToken ct)
    {
        // A fixed window keeps every partition live (not idle) until it ends, so all N exist at once when measured.
        var options = new RateLimitOptions();
        options.Policies[RateLimitPolicies.Anonymous] = new RateLimitPolicyOptions
        {
            Algorithm = nameof(RateLimitAlgorithm.FixedWindow), PermitLimit = 100, Window = window, PartitionBy = nameof(PartitionParts.ClientIp),
        };
        using var registry = new RateLimitRegistry(Options.Create(options), NullLogger<RateLimitRegistry>.Instance, new InProcessRateLimitStore());
        var context = new DefaultHttpContext();
        await AcquireAsync(registry, context, IPAddress.Loopback, ct); // JIT and the shared structures first
        var before = Measure();

        var admitted = 0;
        var clock = Stopwatch.StartNew();
        var bytes = new byte[4];
        for (var i = 0; i < keys; i++)
        {
            // 10.0.0.0/8 and up: distinct IPv4 addresses, so distinct partitions.
            var n = (10u << 24) + (uint)i;
            bytes[0] = (byte)(n >> 24);
            bytes[1] = (byte)(n >> 16);
            bytes[2] = (byte)(n >> 8);
            bytes[3] = (byte)n;
            admitted += await AcquireAsync(registry, context, new IPAddress(bytes), ct) ? 1 : 0;
        }

        var created = clock.Elapsed;
        var after = Measure();

        // The library evicts a partition idle (its quota whole again) for over 10 s, on its 100 ms heartbeat.
        clock.Restart();
        // Sampled every 5 s until the heap stops shrinking (what stays is the partition dictionary's capacity, which
        // a Dictionary never gives back).
        var evicted = after;
        while (clock.Elapsed < idleWait)
        {
            await Task.Delay(TimeSpan.FromSeconds(5), ct);
            var now = Measure();
            // The last partitions made can go once their window has ended and they have been idle 10 s.
            var settled = clock.Elapsed > window + TimeSpan.FromSeconds(12) && evicted.ManagedMiB - now.ManagedMiB < 0.5;
            evicted = now;
            if (settled)
            {
                break;
            }
        }

        return new Result(
            keys,
            $"FixedWindow 100 per {window.TotalSeconds:0} s per client IP",
            admitted,
            Math.Round(created.TotalSeconds, 2),
            Math.Round(created.TotalMicroseconds / keys, 2),
            before,
            after,
            Math.Round((after.ManagedMiB - before.ManagedMiB) * 1024 * 1024 / keys),
            evicted,
            Math.Round(clock.Elapsed.TotalSeconds, 1));
    }

    private static async ValueTask<bool> AcquireAsync(RateLimitRegistry registry, DefaultHttpContext context, IPAddress address, CancellationToken ct)
    {
        context.Items.Clear();
        context.Connection.RemoteIpAddress = address;
        var acquired = await registry.AcquireAsync(context, beforeAuthentication: true, ct);
        acquired.Dispose();
        return acquired.IsAcquired;
    }

    private static Snapshot Measure()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        using var process = Process.GetCurrentProcess();
        return new Snapshot(Math.Round(managed / 1048576.0, 1), Math.Round(process.WorkingSet64 / 1048576.0, 1));
    }
}
