using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Accounts;

namespace Portcullis.Bench;

/// <summary>
/// <c>hash --count N</c> (bench/run.sh) times the configured password hasher (the same
/// service the token endpoint uses) one call at a time and prints JSON with the median and mean in milliseconds, plus
/// the verifications per second with one thread per core.
/// It reads and writes nothing but the configuration.
/// </summary>
public static class HashBench
{
    private static readonly Option<int> Count = new("--count") { Description = "Hashes to time (1-1000).", DefaultValueFactory = _ => 20 };

    public static Command Create(CliIo io)
    {
        var hash = new Command("hash", "Time password hashing and verification, one at a time.");
        hash.Options.Add(Count);
        hash.SetAction(async (parse, _) =>
        {
            var count = parse.GetValue(Count);
            if (count is < 1 or > 1000)
            {
                await io.Error.WriteLineAsync("error: --count must be 1-1000.");
                return CliApp.Usage;
            }

            // Only the hasher is needed: no database, so this runs beside a live server without touching its state.
            var builder = PortcullisHost.CreateBuilder(CliApp.Overrides(parse));
            await using var app = builder.Build();
            var hasher = app.Services.GetRequiredService<IPasswordHasher<User>>();
            var account = app.Services.GetRequiredService<IOptions<AccountOptions>>().Value;
            var user = new User();
            const string password = "benchmark password, not a secret";
            var stored = hasher.HashPassword(user, password); // warm-up (JIT, libsodium init)
            var hashMs = new List<double>(count);
            var verifyMs = new List<double>(count);
            for (var i = 0; i < count; i++)
            {
                var started = Stopwatch.GetTimestamp();
                stored = hasher.HashPassword(user, password);
                hashMs.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                started = Stopwatch.GetTimestamp();
                var verified = hasher.VerifyHashedPassword(user, stored, password);
                verifyMs.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (verified == PasswordVerificationResult.Failed)
                {
                    await io.Error.WriteLineAsync("error: the hasher did not verify its own hash.");
                    return CliApp.Failed;
                }
            }

            // The same verification on every core at once: what the hasher alone delivers in parallel, with no
            // server around it. Argon2id is memory-hard, so parallel calls can be slower than one at a time.
            var threads = Environment.ProcessorCount;
            var perThread = Math.Max(2, count / 2);
            var parallelStarted = Stopwatch.GetTimestamp();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                for (var i = 0; i < perThread; i++)
                {
                    hasher.VerifyHashedPassword(user, stored, password);
                }
            });
            var parallelSeconds = Stopwatch.GetElapsedTime(parallelStarted).TotalSeconds;

            await io.Out.WriteLineAsync(JsonSerializer.Serialize(new
            {
                algorithm = stored[..stored.IndexOf('$', 10)],
                memoryKiB = account.Argon2MemoryKiB,
                iterations = account.Argon2Iterations,
                count,
                hashMedianMs = Median(hashMs),
                hashMeanMs = hashMs.Average(),
                verifyMedianMs = Median(verifyMs),
                verifyMeanMs = verifyMs.Average(),
                parallelThreads = threads,
                parallelVerifyPerSecond = threads * perThread / parallelSeconds,
            }, CliApp.JsonOutput));
            return CliApp.Ok;
        });
        return hash;
    }

    private static double Median(List<double> values) => BenchApp.Median(values);
}
