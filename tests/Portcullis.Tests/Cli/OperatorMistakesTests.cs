using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Portcullis.Cli;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Cli;

/// <summary>
/// Everyday mistakes end in one line naming the setting, the problem and the fix, with the README's exit code and no
/// stack trace unless <c>--verbose</c>. Run in-process through <see cref="CliApp.RunAsync"/>, as the executable does.
/// </summary>
public sealed class OperatorMistakesTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("portcullis-mistakes-").FullName;

    private string DataDirectory => Path.Combine(_dir, "data");

    public async ValueTask DisposeAsync()
    {
        await TestDatabase.DropAsync(DataDirectory);
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Exit, string Out, string Error)> RunAsync(Dictionary<string, string?>? settings, params string[] args)
    {
        var all = TestDatabase.IsPostgres ? await TestDatabase.SettingsForAsync(DataDirectory) : [];
        foreach (var (key, value) in settings ?? [])
        {
            all[key] = value;
        }

        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync([.. args, "--data-dir", DataDirectory], new StringReader(""), output, error, all);
        return (exit, output.ToString(), error.ToString());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static void NoStackTrace(string text) => Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);

    [Theory]
    [InlineData("frobnicate", "Unrecognized command or argument 'frobnicate'.", "portcullis")]
    [InlineData("users list --limit many", "Cannot parse argument 'many' for option '--limit'", "portcullis users list")]
    [InlineData("users list --colour", "Unrecognized command or argument '--colour'.", "portcullis users list")]
    public async Task A_usage_error_exits_2_with_the_parser_s_own_message(string command, string message, string help)
    {
        var (exit, output, error) = await RunAsync(null, command.Split(' '));

        Assert.Equal(CliApp.Usage, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        // The mistake and where to look, not the whole help screen.
        Assert.EndsWith($"Run '{help} --help' for usage.", error.TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("Options:", output + error, StringComparison.Ordinal);
        NoStackTrace(output + error);
    }

    [Fact]
    public async Task Serve_with_a_url_without_a_scheme_is_a_usage_error_that_says_to_add_https()
    {
        var (exit, output, error) = await RunAsync(null, "serve", "--urls", "127.0.0.1:8444");

        Assert.Equal(CliApp.Usage, exit);
        Assert.Equal(["--urls: '127.0.0.1:8444' has no scheme; use https://127.0.0.1:8444", "Run 'portcullis serve --help' for usage."], Lines(error));
        Assert.Empty(output); // no help screen after the mistake
        NoStackTrace(output + error);
    }

    [Fact]
    public async Task Serve_on_a_port_in_use_says_so_in_one_line_and_exits_1()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var url = $"https://127.0.0.1:{((IPEndPoint)taken.LocalEndpoint).Port}";

        var (exit, output, error) = await RunAsync(PortcullisServer.TestSettings(), "serve", "--urls", url);

        Assert.Equal(CliApp.Failed, exit);
        Assert.Equal(
            $"Portcullis cannot start: cannot listen on {url}: the address is already in use (another Portcullis?). Stop it or pick another port with --urls.",
            Assert.Single(Lines(error)));
        NoStackTrace(output + error);
    }

    [Theory]
    [InlineData("Tokens:AccessTokenLifetime", "banana",
        "Portcullis cannot start: Tokens:AccessTokenLifetime (Portcullis__Tokens__AccessTokenLifetime): 'banana' is not a time span; use [d.]hh:mm:ss[.fff], e.g. 00:10:00.")]
    [InlineData("Accounts:AllowRegistration", "yes",
        "Portcullis cannot start: Accounts:AllowRegistration (Portcullis__Accounts__AllowRegistration): 'yes' is not true or false; use true or false.")]
    public async Task A_setting_of_the_wrong_type_names_the_key_the_problem_and_a_good_value_and_exits_5(string key, string value, string line)
    {
        var (exit, output, error) = await RunAsync(new() { [key] = value }, "serve", "--urls", $"https://127.0.0.1:{PortcullisServer.FreePort()}");

        Assert.Equal(CliApp.Configuration, exit);
        Assert.Equal(line, Assert.Single(Lines(error)));
        NoStackTrace(output + error);
    }

    [Fact]
    public async Task Every_wrong_value_is_listed_at_once_by_any_command_and_a_secret_looking_one_is_not_echoed()
    {
        var (exit, output, error) = await RunAsync(
            new() { ["Accounts:MinPasswordLength"] = "hunter2-secret", ["Tokens:MaxTokenBytes"] = "lots" }, "users", "list");

        Assert.Equal(CliApp.Configuration, exit);
        Assert.Equal(
            [
                "error: Accounts:MinPasswordLength (Portcullis__Accounts__MinPasswordLength): the value (hidden) is not a whole number; use e.g. 15.",
                "error: Tokens:MaxTokenBytes (Portcullis__Tokens__MaxTokenBytes): 'lots' is not a whole number; use e.g. 8192.",
            ],
            Lines(error));
        Assert.DoesNotContain("hunter2", output + error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verbose_adds_the_stack_trace()
    {
        var (exit, _, error) = await RunAsync(new() { ["Tokens:AccessTokenLifetime"] = "banana" }, "doctor", "--verbose");

        Assert.Equal(CliApp.Configuration, exit);
        Assert.StartsWith("error: Tokens:AccessTokenLifetime", error, StringComparison.Ordinal);
        Assert.Contains("ConfigurationException", error, StringComparison.Ordinal);
        Assert.Contains("   at ", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_setting_its_validator_refuses_exits_5_with_the_validator_s_message()
    {
        var (exit, output, error) = await RunAsync(new() { ["Storage:Provider"] = "Postgres", ["Storage:ConnectionString"] = null }, "users", "list");

        Assert.Equal(CliApp.Configuration, exit);
        Assert.Contains("Storage:ConnectionString must be set", error, StringComparison.Ordinal);
        NoStackTrace(output + error);
    }

    [Fact]
    public async Task Doctor_reports_a_misspelt_setting_with_the_closest_known_key()
    {
        var settings = PortcullisServer.TestSettings();
        settings["Acounts:AllowRegistration"] = "false";
        settings["Tokens:AccessTokenLifetme"] = "00:05:00";
        settings["Gateway:Routes:0:Requires:Roles:0"] = "admin";

        var (_, output, error) = await RunAsync(settings, "doctor");

        var lines = Lines(output);
        Assert.Contains("[MEDIUM] unknown-setting: Acounts:AllowRegistration is not a Portcullis setting: it is ignored.", lines);
        Assert.Contains("fix: Did you mean Accounts:AllowRegistration?", lines);
        Assert.Contains("[MEDIUM] unknown-setting: Tokens:AccessTokenLifetme is not a Portcullis setting: it is ignored.", lines);
        Assert.Contains("fix: Did you mean Tokens:AccessTokenLifetime?", lines);
        Assert.Contains("fix: Did you mean Gateway:Routes:0:Require:Roles:0?", lines);
        // The suite's own settings (rate-limit policies, throttles, storage) are all known: nothing else is reported.
        Assert.Equal(3, lines.Count(l => l.Contains("unknown-setting", StringComparison.Ordinal)));
        NoStackTrace(output + error);
    }

    [Fact]
    public void Every_options_class_bound_to_configuration_is_known_to_the_setting_checks()
    {
        var services = PortcullisHost.CreateBuilder(new Dictionary<string, string?> { ["Storage:DataDirectory"] = DataDirectory }).Services;
        var bound = services
            .Where(d => d.ServiceType.IsGenericType && d.ServiceType.GetGenericTypeDefinition() == typeof(IOptionsChangeTokenSource<>))
            .Select(d => d.ServiceType.GetGenericArguments()[0])
            .Where(t => t.Assembly == typeof(PortcullisHost).Assembly)
            .Distinct()
            .ToList();

        Assert.NotEmpty(bound);
        Assert.All(bound, type => Assert.Contains(type, ConfigurationCheck.OptionsSections.Values));
    }

    [Fact]
    public async Task A_misspelt_environment_variable_is_a_warning_at_start_up()
    {
        await using var server = await ChildServer.StartAsync(settings: new Dictionary<string, string?> { ["Acounts:AllowRegistration"] = "false" });

        var warning = Assert.Single(Lines(server.Stdout), l => l.Contains("unknown-setting", StringComparison.Ordinal));
        Assert.Contains("Warning", warning, StringComparison.Ordinal);
        Assert.Contains("Acounts:AllowRegistration (environment variable Portcullis__Acounts__AllowRegistration) is not a Portcullis setting", warning, StringComparison.Ordinal);
        Assert.Contains("Did you mean Accounts:AllowRegistration (Portcullis__Accounts__AllowRegistration)?", warning, StringComparison.Ordinal);
    }
}
