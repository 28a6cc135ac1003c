using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Portcullis.Gateway;
using Portcullis.RateLimits;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Gateway;

/// <summary>Route configuration: deny by default, every error listed at start, reloads that keep the last good routes.</summary>
public sealed class GatewayConfigTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("portcullis-gw-config-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static readonly HashSet<string> Policies = new(RateLimitRegistry.Defaults().Keys, StringComparer.OrdinalIgnoreCase);

    private static GatewayRouteOptions Route(string name, string match, string upstream = "http://127.0.0.1:5000") => new()
    {
        Name = name, Match = match, Methods = ["GET"], Upstream = upstream, Require = new() { Roles = ["user"] },
    };

    [Fact]
    public void A_route_without_Require_is_refused_and_anonymous_must_be_declared()
    {
        var open = Route("open", "/open/{**rest}");
        open.Require = null;
        var declared = Route("declared", "/declared/{**rest}");
        declared.Require = null;
        declared.Anonymous = true;

        var (snapshot, errors) = GatewayRouteCompiler.Compile(new GatewayOptions { Routes = [open, declared] }, Policies, 1);

        Assert.Null(snapshot);
        var error = Assert.Single(errors);
        Assert.Contains("Gateway:Routes:0 has no Require", error, StringComparison.Ordinal);
        Assert.Contains("\"Anonymous\": true", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_invalid_route_setting_is_listed_at_once()
    {
        var invalidSchema = Path.Combine(_directory, "invalid.json");
        File.WriteAllText(invalidSchema, """{"type": 12}""");
        var notJson = Path.Combine(_directory, "broken.json");
        File.WriteAllText(notJson, """{"type": """);
        var unknownPolicy = Route("limits", "/limits/{**rest}");
        unknownPolicy.RateLimits = ["no-such-policy"];
        var missingSchema = Route("missing", "/missing", "http://127.0.0.1:5000");
        missingSchema.Body = new() { Schema = Path.Combine(_directory, "nope.json") };
        var badSchema = Route("bad", "/bad");
        badSchema.Body = new() { Schema = invalidSchema };
        var brokenSchema = Route("broken", "/broken");
        brokenSchema.Body = new() { Schema = notJson };
        var options = new GatewayOptions
        {
            Routes =
            [
                unknownPolicy, missingSchema, badSchema, brokenSchema,
                Route("ftp", "/ftp/{**rest}", "ftp://127.0.0.1/"),
                Route("one", "/same/{id}"),
                Route("two", "/SAME/{other}"),
                Route("own", "/api/{**rest}"),
                Route("root", "/{**rest}"),
            ],
        };

        var (snapshot, errors) = GatewayRouteCompiler.Compile(options, Policies, 1);

        Assert.Null(snapshot);
        var all = string.Join("\n", errors);
        Assert.Contains("Gateway:Routes:0:RateLimits names unknown policy 'no-such-policy'", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:1:Body:Schema", all, StringComparison.Ordinal);
        Assert.Contains("cannot be read", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:2:Body:Schema", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:3:Body:Schema", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:4:Upstream", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:6:Match '/SAME/{other}' and Gateway:Routes:5 match the same path and method", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:7:Match '/api/{**rest}' overlaps Portcullis's own /api paths", all, StringComparison.Ordinal);
        Assert.Contains("Gateway:Routes:8:Match '/{**rest}' must start with a literal segment", all, StringComparison.Ordinal);
        Assert.Equal(8, errors.Count); // one per broken route, the duplicate pair once
    }

    [Fact]
    public void KeepResponseHeaders_may_name_only_the_software_headers_the_gateway_removes()
    {
        var typo = Route("typo", "/typo");
        typo.KeepResponseHeaders = ["Sever", "X-Request-Id"];
        var powered = Route("powered", "/powered");
        powered.KeepResponseHeaders = ["x-powered-by"];

        var (refused, errors) = GatewayRouteCompiler.Compile(new GatewayOptions { Routes = [typo, powered] }, Policies, 1);

        Assert.Null(refused);
        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routes:0:KeepResponseHeaders has 'Sever', which is not removed", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routes:0:KeepResponseHeaders has 'X-Request-Id'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routes:1:KeepResponseHeaders cannot keep X-Powered-By", StringComparison.Ordinal));

        var keeps = Route("keeps", "/keeps");
        keeps.KeepResponseHeaders = [" server ", "X-Runtime"];
        var (snapshot, none) = GatewayRouteCompiler.Compile(new GatewayOptions { Routes = [keeps, Route("default", "/default")] }, Policies, 1);

        Assert.Empty(none);
        IEnumerable<string> Removed(int route) => snapshot!.Routes[route].Transforms!
            .Select(t => Assert.Contains("ResponseHeaderRemove", t) + "/" + t["When"]);
        Assert.Equal(GatewayRouteCompiler.SoftwareHeaders.Select(h => h + "/Always"), Removed(1));
        Assert.Equal(GatewayRouteCompiler.SoftwareHeaders.Except(["Server", "X-Runtime"]).Select(h => h + "/Always"), Removed(0));
    }

    [Fact]
    public void Same_path_with_different_methods_is_allowed()
    {
        var get = Route("get", "/items/{id}");
        var post = Route("post", "/items/{x}");
        post.Methods = ["POST"];

        var (snapshot, errors) = GatewayRouteCompiler.Compile(new GatewayOptions { Routes = [get, post] }, Policies, 1);

        Assert.Empty(errors);
        Assert.Equal(2, snapshot!.Routes.Count);
    }

    [Fact]
    public async Task C01_invalid_routes_stop_start_up_naming_every_error()
    {
        var data = HostRun.NewDataDirectory();
        try
        {
            var port = HostRun.FreePort();
            var settings = HostRun.Settings(data, port,
                ("Gateway:Routes:0:Name", "open"), ("Gateway:Routes:0:Match", "/open/{**rest}"), ("Gateway:Routes:0:Methods:0", "GET"),
                ("Gateway:Routes:0:Upstream", "http://127.0.0.1:5000"),
                ("Gateway:Routes:1:Name", "ftp"), ("Gateway:Routes:1:Match", "/ftp"), ("Gateway:Routes:1:Methods:0", "GET"),
                ("Gateway:Routes:1:Upstream", "ftp://127.0.0.1"), ("Gateway:Routes:1:Anonymous", "true"));

            var failure = await HostRun.StartFailsAsync(settings, "Test");

            var validation = Assert.IsType<OptionsValidationException>(failure);
            Assert.Contains(validation.Failures, f => f.Contains("Gateway:Routes:0 has no Require", StringComparison.Ordinal));
            Assert.Contains(validation.Failures, f => f.Contains("Gateway:Routes:1:Upstream", StringComparison.Ordinal));
            Assert.False(await HostRun.ListensAsync(port));
        }
        finally
        {
            await HostRun.DeleteQuietlyAsync(data);
        }
    }

    private async Task WriteRoutesAsync(string path, string json)
    {
        // Written whole and moved into place, as deployment tools do; the watcher sees one change.
        var temporary = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".tmp");
        await File.WriteAllTextAsync(temporary, json);
        File.Move(temporary, path, overwrite: true);
    }

    private static string RoutesJson(string upstream, string require) => $$"""
        { "Routes": [ { "Name": "reload", "Match": "/reload/{**rest}", "Methods": ["GET"], "Upstream": "{{upstream}}", {{require}} } ] }
        """;

    private static async Task<HttpStatusCode> EventuallyAsync(Func<Task<HttpStatusCode>> probe, HttpStatusCode wanted)
    {
        var status = await probe();
        for (var i = 0; i < 100 && status != wanted; i++)
        {
            await Task.Delay(100);
            status = await probe();
        }

        return status;
    }

    [Fact]
    public async Task A_changed_routes_file_is_applied_and_an_invalid_one_keeps_the_previous_routes()
    {
        await using var upstream = await TestUpstream.StartAsync();
        var up = upstream.Address.AbsoluteUri.TrimEnd('/');
        var file = Path.Combine(_directory, "routes.json");
        await WriteRoutesAsync(file, RoutesJson(up, "\"Anonymous\": true"));
        await using var server = await PortcullisServer.StartAsync(new Dictionary<string, string?> { ["Gateway:RoutesFile"] = file });
        using var http = server.CreateClient();
        var routes = server.Services.GetRequiredService<GatewayConfigProvider>();
        async Task<HttpStatusCode> Probe()
        {
            using var response = await http.GetAsync("reload/x");
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await Probe());

        // A good change: the route now needs a role.
        await WriteRoutesAsync(file, RoutesJson(up, "\"Require\": { \"Roles\": [\"admin\"] }"));
        Assert.Equal(HttpStatusCode.Unauthorized, await EventuallyAsync(Probe, HttpStatusCode.Unauthorized));
        var generation = routes.Generation;

        // A bad change (deny by default broken, and an ftp upstream): logged, the previous routes stay.
        await WriteRoutesAsync(file, RoutesJson("ftp://127.0.0.1", "\"Anonymous\": false"));
        await Task.Delay(1500);
        Assert.Equal(generation, routes.Generation);
        Assert.Equal(HttpStatusCode.Unauthorized, await Probe());

        // Not JSON at all: the same.
        await WriteRoutesAsync(file, "{ \"Routes\": [ ");
        await Task.Delay(1000);
        Assert.Equal(generation, routes.Generation);
        Assert.Equal(HttpStatusCode.Unauthorized, await Probe());

        // And a good one after the bad ones still applies.
        await WriteRoutesAsync(file, RoutesJson(up, "\"Anonymous\": true"));
        Assert.Equal(HttpStatusCode.OK, await EventuallyAsync(Probe, HttpStatusCode.OK));
    }

    [Fact]
    public void The_seed_gateway_example_passes_start_up_validation()
    {
        var example = FindExample();
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(example, "appsettings.json")).Build();
        var options = configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>()!;
        options.RoutesFile = Path.Combine(example, options.RoutesFile!);
        var limits = configuration.GetSection(RateLimitOptions.Section).Get<RateLimitOptions>() ?? new RateLimitOptions();
        Assert.True(new RateLimitOptionsValidator().Validate(null, limits).Succeeded);
        var policies = new HashSet<string>(Policies.Concat(limits.Policies.Keys), StringComparer.OrdinalIgnoreCase);

        var (snapshot, errors) = GatewayRouteCompiler.Compile(options, policies, 1);

        Assert.Empty(errors);
        Assert.Equal(["admin", "limited", "register"], snapshot!.ByRouteId.Values.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.NotNull(snapshot.ByRouteId["gateway-register"].Schema);
    }

    private static string FindExample()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "examples", "seed-gateway");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("examples/seed-gateway");
    }
}
