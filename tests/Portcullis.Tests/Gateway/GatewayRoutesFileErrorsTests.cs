using Portcullis.Cli;
using Portcullis.Gateway;
using Portcullis.RateLimits;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Gateway;

/// <summary>A routes file's mistakes name the file, the route and the field, with the closest known field for a typo.</summary>
public sealed class GatewayRoutesFileErrorsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("portcullis-gw-file-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static readonly HashSet<string> Policies = new(RateLimitRegistry.Defaults().Keys, StringComparer.OrdinalIgnoreCase);

    private string Write(string routes)
    {
        var path = Path.Combine(_directory, "routes.json");
        File.WriteAllText(path, $$"""{ "Routes": [ {{routes}} ] }""");
        return path;
    }

    private static List<string> Errors(string path) =>
        GatewayRouteCompiler.Compile(new GatewayOptions { RoutesFile = path }, Policies, 1).Errors;

    [Fact]
    public void A_misspelt_field_is_named_with_its_route_and_the_field_it_probably_means()
    {
        var path = Write("""{ "Name": "orders", "Match": "/orders/{**rest}", "Methods": ["GET"], "Upstream": "http://127.0.0.1:5000", "Requires": { "Roles": ["user"] } }""");

        Assert.Equal([$"gateway routes file {path}: route \"orders\": unknown field \"Requires\" (did you mean \"Require\"?)"], Errors(path));
    }

    [Fact]
    public void Values_of_the_wrong_shape_or_type_are_named_by_route_and_field()
    {
        var path = Write("""
            { "Name": "orders", "Match": "/orders/{**rest}", "Methods": "GET", "Upstream": "http://127.0.0.1:5000", "Anonymous": "yes",
              "Body": { "MaxByte": 10 } },
            { "Match": "/stock/{**rest}", "Methods": ["GET"], "Upstream": "http://127.0.0.1:5000", "Anonymous": true, "Timeout": "soon" }
            """);

        var errors = Errors(path);

        Assert.Equal(
            [
                $"gateway routes file {path}: route \"orders\": field \"Anonymous\": 'yes' is not true or false; use true or false.",
                $"gateway routes file {path}: route \"orders\": field \"Methods\": 'GET' is a single value; it must be a list, e.g. [\"GET\"].",
                $"gateway routes file {path}: route \"orders\": in \"Body\": unknown field \"MaxByte\" (did you mean \"MaxBytes\"?)",
                $"gateway routes file {path}: route 2 (no Name): field \"Timeout\": 'soon' is not a time span; use [d.]hh:mm:ss[.fff], e.g. 00:00:00.",
            ],
            errors.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_route_error_from_the_file_names_the_route()
    {
        var path = Write("""{ "Name": "orders", "Match": "/orders/{**rest}", "Methods": ["GET"], "Upstream": "ftp://127.0.0.1/" , "Anonymous": true }""");

        var error = Assert.Single(Errors(path));
        Assert.StartsWith($"gateway routes file {path}: route \"orders\":Upstream must be an absolute http:// or https:// URL", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_refuses_a_misspelt_routes_file_in_one_line_with_exit_5()
    {
        var path = Write("""{ "Name": "orders", "Match": "/orders/{**rest}", "Methods": ["GET"], "Upstream": "http://127.0.0.1:5000", "Requires": { "Roles": ["user"] } }""");
        var dataDirectory = Path.Combine(_directory, "data");
        var settings = TestDatabase.IsPostgres ? await TestDatabase.SettingsForAsync(dataDirectory) : [];
        settings["Gateway:RoutesFile"] = path;
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            var exit = await CliApp.RunAsync(["serve", "--urls", $"https://127.0.0.1:{PortcullisServer.FreePort()}", "--data-dir", dataDirectory],
                new StringReader(""), output, error, settings);

            Assert.Equal(CliApp.Configuration, exit);
            Assert.Equal(
                $"Portcullis cannot start: gateway routes file {path}: route \"orders\": unknown field \"Requires\" (did you mean \"Require\"?)",
                error.ToString().Trim());
            Assert.DoesNotContain("   at ", output.ToString() + error, StringComparison.Ordinal);
        }
        finally
        {
            await TestDatabase.DropAsync(dataDirectory);
        }
    }
}
