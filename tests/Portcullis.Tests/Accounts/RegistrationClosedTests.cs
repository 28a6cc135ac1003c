using System.Net;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>A server started with <c>Accounts:AllowRegistration=false</c>.</summary>
public sealed class ClosedRegistrationFixture : IAsyncLifetime
{
    public PortcullisServer Server { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Server = await PortcullisServer.StartAsync(new Dictionary<string, string?> { ["Accounts:AllowRegistration"] = "false" });
        Client = Server.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>With self-registration switched off nobody can sign up, whatever they send; the CLI still can.</summary>
public sealed class RegistrationClosedTests(ClosedRegistrationFixture fixture) : IClassFixture<ClosedRegistrationFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task Registration_switched_off_is_403_problem_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("closed");
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterAsync(username);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden, secrets: [ClientFlows.Password]);
        Assert.Equal("https://portcullis.dev/problems/registration-closed", problem.GetProperty("type").GetString());
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
        using var login = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        await Refusal.AssertInvalidGrantAsync(login);
    }

    [Fact]
    public async Task Registration_switched_off_answers_403_even_to_a_malformed_body()
    {
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", """{"username":"x","role":"admin" """);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task Registration_switched_off_still_lets_the_cli_add_users_who_can_log_in()
    {
        var username = ClientFlows.UniqueName("cli");
        var before = await Server.CountUsersAsync();

        var result = await Server.RunCliAsync(ClientFlows.Password + "\n", "users", "add", "--username", username, "--email", $"{username}@example.com", "--password-stdin");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(before + 1, await Server.CountUsersAsync());
        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username)).AccessToken));
    }
}
