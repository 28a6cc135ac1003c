using System.CommandLine;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Portcullis.Cli;
using Portcullis.Hosting;

namespace Portcullis.Bench;

/// <summary>
/// <c>serve-without-rate-limits --urls U</c> (bench/run.sh <c>PORTCULLIS_BENCH_RATELIMITS=off</c>): the product's
/// own host and pipeline (<see cref="PortcullisHost.CreateBuilder"/>, <see cref="PortcullisHost.BuildApp"/>, the
/// same configuration) with every endpoint's rate-limit policies taken away, so that a run against it and a run
/// against <c>portcullis serve</c> differ by what the limiter costs a request. The product has no switch for this
/// (STYLE.md: no bench code in the product); the bench marks each endpoint with
/// <see cref="DisableRateLimitingAttribute"/>, which the product's registry honours as "no limits here".
/// What stays: the two phase middlewares, which then find no limit but the process-wide concurrency cap (one
/// uncontended counter). Requests that match no endpoint are still counted by the anonymous policy.
/// </summary>
public static class ServeWithoutRateLimits
{
    private static readonly Option<string?> Urls = new("--urls") { Description = "Addresses to listen on, ';'-separated." };

    public static Command Create(CliIo io)
    {
        var command = new Command("serve-without-rate-limits", "Run the Portcullis server with no per-endpoint rate limit (bench only).");
        command.Options.Add(Urls);
        command.SetAction(async (parse, ct) =>
        {
            var overrides = io.WithSettings(CliApp.Overrides(parse));
            if (parse.GetValue(Urls) is { Length: > 0 } urls)
            {
                overrides["urls"] = urls;
            }

            WebApplication app;
            try
            {
                app = PortcullisHost.BuildApp(PortcullisHost.CreateBuilder(overrides));
                RemoveRateLimits(app);
                await PortcullisHost.InitializeAsync(app.Services, ct);
            }
            catch (Exception ex) when (ex is StartupException or OptionsValidationException)
            {
                await io.Error.WriteLineAsync("Portcullis cannot start: " + ex.Message);
                return CliApp.Failed;
            }

            await using (app)
            {
                await app.StartAsync(ct);
                await io.Error.WriteLineAsync($"Portcullis (bench: no rate limits) is listening on {string.Join(", ", app.Urls)}");
                await app.WaitForShutdownAsync(ct);
            }

            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>
    /// Replaces each of the app's endpoint sources by one whose endpoints carry <see cref="DisableRateLimitingAttribute"/>
    /// (the gateway's routes included: its source is wrapped too, and its reloads pass through). Endpoints are built
    /// lazily, so this runs after <see cref="PortcullisHost.BuildApp"/> and before the first request.
    /// </summary>
    public static void RemoveRateLimits(WebApplication app)
    {
        IEndpointRouteBuilder routes = app;
        var sources = routes.DataSources.ToList();
        routes.DataSources.Clear();
        foreach (var source in sources)
        {
            routes.DataSources.Add(new Unlimited(source));
        }
    }

    private sealed class Unlimited(EndpointDataSource inner) : EndpointDataSource
    {
        private static readonly DisableRateLimitingAttribute Disable = new();
        // One object, swapped whole: routing may read the endpoints from several threads at once.
        private Built? _built;

        public override IReadOnlyList<Endpoint> Endpoints
        {
            get
            {
                var current = inner.Endpoints;
                var built = _built;
                if (built is null || !ReferenceEquals(built.From, current))
                {
                    // Rebuilt only when the inner source changed (the gateway's routes reloaded).
                    built = new Built(current, [.. current.Select(Without)]);
                    _built = built;
                }

                return built.Endpoints;
            }
        }

        public override IChangeToken GetChangeToken() => inner.GetChangeToken();

        private static Endpoint Without(Endpoint endpoint) => endpoint is RouteEndpoint route
            ? new RouteEndpoint(route.RequestDelegate!, route.RoutePattern, route.Order, new EndpointMetadataCollection([.. route.Metadata, Disable]), route.DisplayName)
            : endpoint;

        private sealed record Built(IReadOnlyList<Endpoint> From, IReadOnlyList<Endpoint> Endpoints);
    }
}
