using System.Net;
using System.Text;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>The password rules at registration (AUTH-01, AUTH-02, AUTH-04, PWD-05).</summary>
public sealed class RegisterPasswordRulesTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task A01_a_14_character_password_is_refused_naming_the_rule_without_echoing_it()
    {
        var username = ClientFlows.UniqueName("carol");
        const string password = "abcdefghijklmn";
        Assert.Equal(14, password.Length);
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterAsync(username, password);

        var problem = await AssertInvalidFieldAsync(response, "password", password);
        Assert.Contains("15", MessagesFor(problem, "password"), StringComparison.Ordinal);
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Fact]
    public async Task A01_a_64_character_passphrase_with_spaces_registers_and_logs_in()
    {
        var username = ClientFlows.UniqueName("carol");
        const string passphrase = "maple river quietly folds eleven paper cranes beside the harbors";
        Assert.Equal(64, passphrase.Length);

        using var response = await _http.RegisterAsync(username, passphrase);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var tokens = await _http.LoginAsync(username, passphrase);
        Assert.False(string.IsNullOrEmpty(tokens.AccessToken));
    }

    [Fact]
    public async Task A01_length_counts_code_points_so_15_emoji_are_enough_and_14_are_not()
    {
        // Each emoji is one code point but two UTF-16 units: 14 of them are 28 units and must still be too short.
        static string Emoji(int count) => string.Concat(Enumerable.Range(0, count).Select(i => char.ConvertFromUtf32(0x1F600 + (i * 3))));
        var fifteen = Emoji(15);
        var fourteen = Emoji(14);
        Assert.Equal(30, fifteen.Length);

        var shortName = ClientFlows.UniqueName("emo");
        using (var tooShort = await _http.RegisterAsync(shortName, fourteen))
        {
            var problem = await AssertInvalidFieldAsync(tooShort, "password", fourteen);
            Assert.Contains("15", MessagesFor(problem, "password"), StringComparison.Ordinal);
        }

        Assert.Null(await Server.FindUserAsync(shortName));

        var username = ClientFlows.UniqueName("emo");
        using (var ok = await _http.RegisterAsync(username, fifteen))
        {
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        }

        var tokens = await _http.LoginAsync(username, fifteen);
        Assert.False(string.IsNullOrEmpty(tokens.AccessToken));
    }

    [Fact]
    public async Task A02_a_one_million_character_password_is_refused_quickly_and_nothing_is_created()
    {
        var username = ClientFlows.UniqueName("huge");
        var password = new string('k', 1_000_000);
        var body = $$"""{"username":"{{username}}","email":"{{username}}@example.com","password":"{{password}}"}""";
        var before = await Server.CountUsersAsync();

        using (var response = await _http.PostOversizedAsync("api/accounts", body))
        {
            // 413 from the 64 KiB body limit; 400 would also be a refusal before any hashing.
            Assert.True(
                response.StatusCode is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest,
                $"Expected 413 or 400, got {(int)response.StatusCode}.");
            await ProblemAssert.IsProblemAsync(response, response.StatusCode, secrets: [new string('k', 64)]);
        }

        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.PostOversizedAsync("api/accounts", body));
        Assert.Equal(before, await Server.CountUsersAsync());
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task A02_a_1100_character_password_that_fits_the_body_is_refused_naming_the_maximum_before_hashing()
    {
        var username = ClientFlows.UniqueName("long");
        var password = string.Concat(Enumerable.Repeat("quartz lantern ", 74))[..1100];

        using (var response = await _http.RegisterAsync(username, password))
        {
            var problem = await AssertInvalidFieldAsync(response, "password", password[..40]);
            Assert.Contains("1024", MessagesFor(problem, "password"), StringComparison.Ordinal);
        }

        // A sanity bound only (an Argon2id hash of 1,100 characters would also be quick); the proof that nothing
        // was hashed and stored is the missing row.
        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.RegisterAsync(username, password));
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Theory]
    [InlineData("password123456789")]
    [InlineData("Password1234567!")]
    [InlineData("qwertyuiopasdfgh")]
    [InlineData("portcullissecure2025")]
    [InlineData("PortCullis Secure 2025")]
    public async Task A05_a_common_or_context_password_is_refused_without_echoing_it(string password)
    {
        var username = ClientFlows.UniqueName("dave");
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterAsync(username, password);

        await AssertInvalidFieldAsync(response, "password", password);
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Fact]
    public async Task A05_a_password_containing_the_username_is_refused_without_echoing_it()
    {
        var username = ClientFlows.UniqueName("erin");
        foreach (var password in new[] { $"my name is {username} ok", $"{username.ToUpperInvariant()}{username}", username + "-" + username })
        {
            using var response = await _http.RegisterAsync(username, password);
            var problem = await AssertInvalidFieldAsync(response, "password", password);
            Assert.Contains("username", MessagesFor(problem, "password"), StringComparison.OrdinalIgnoreCase);
            Assert.Null(await Server.FindUserAsync(username));
        }
    }

    private async Task AssertStillAnswersAsync()
    {
        using var fresh = Server.CreateClient();
        using var live = await fresh.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Contains("ok", Encoding.UTF8.GetString(await live.Content.ReadAsByteArrayAsync()), StringComparison.Ordinal);
    }
}
