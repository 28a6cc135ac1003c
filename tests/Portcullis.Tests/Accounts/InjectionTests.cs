using System.Net;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// V15: SQL-injection strings in every string field of register and login are data: a generic refusal, never a
/// 500, never a token for someone else, never a delay of a second or more over an ordinary request of the same kind (VAL-06).
/// </summary>
public sealed class InjectionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly TimeSpan NoDelay = TimeSpan.FromSeconds(1);
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    public static TheoryData<string> Payloads =>
    [
        "' OR '1'='1' -- ",
        "admin'--",
        "1; SELECT 1--",
        "\") OR 1=1--",
        "x'; DROP TABLE AspNetUsers; --",
        "' UNION SELECT PasswordHash FROM AspNetUsers --",
        "1' AND randomblob(1000000000) --",
    ];

    [Theory]
    [MemberData(nameof(Payloads))]
    public async Task V15_an_injection_string_as_the_username_or_email_at_registration_is_refused_generically(string payload)
    {
        var before = await Server.CountUsersAsync();

        using (var asUsername = await _http.RegisterWithEmailAsync(payload, UniqueEmail()))
        {
            Assert.True(asUsername.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Conflict, $"Got {(int)asUsername.StatusCode}.");
            await ProblemAssert.IsProblemAsync(asUsername, asUsername.StatusCode, secrets: [ClientFlows.Password, "SQLite", "AspNetUsers"]);
        }

        using (var asEmail = await _http.RegisterWithEmailAsync(ClientFlows.UniqueName("sqli"), payload))
        {
            Assert.True(asEmail.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Conflict, $"Got {(int)asEmail.StatusCode}.");
            await ProblemAssert.IsProblemAsync(asEmail, asEmail.StatusCode, secrets: [ClientFlows.Password, "SQLite", "AspNetUsers"]);
        }

        // Baseline: a registration refused for an ordinary reason (a too-short username).
        Func<Task<HttpResponseMessage>> ordinary = () => _http.RegisterWithEmailAsync("ab", UniqueEmail());
        await AssertNoDelayAsync(NoDelay, ordinary, () => _http.RegisterWithEmailAsync(payload, UniqueEmail()));
        await AssertNoDelayAsync(NoDelay, ordinary, () => _http.RegisterWithEmailAsync(ClientFlows.UniqueName("sqli"), payload));
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Theory]
    [MemberData(nameof(Payloads))]
    public async Task V15_an_injection_string_as_the_password_at_registration_is_only_ever_a_password(string payload)
    {
        // A password may be any text: a long enough payload is a valid (if silly) password, so 201 is right as
        // long as it is stored as a hash and only that exact text logs in.
        var username = ClientFlows.UniqueName("sqlp");

        using (var response = await _http.RegisterWithEmailAsync(username, UniqueEmail(), payload))
        {
            if (response.StatusCode == HttpStatusCode.Created)
            {
                var user = await Server.FindUserAsync(username);
                Assert.NotNull(user);
                Assert.StartsWith("$argon2id$", user.PasswordHash, StringComparison.Ordinal);
                Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username, payload)).AccessToken));
                using var other = await _http.PasswordGrantAsync(username, "' OR 1=1 -- and then some");
                await Refusal.AssertInvalidGrantAsync(other);
            }
            else
            {
                await AssertInvalidFieldAsync(response, "password", payload);
                Assert.Null(await Server.FindUserAsync(username));
            }
        }

        // Baseline: an ordinary registration, which hashes its password too.
        await AssertNoDelayAsync(
            NoDelay,
            () => _http.RegisterWithEmailAsync(ClientFlows.UniqueName("base"), UniqueEmail()),
            () => _http.RegisterWithEmailAsync(ClientFlows.UniqueName("sqlp"), UniqueEmail(), payload));
    }

    [Theory]
    [MemberData(nameof(Payloads))]
    public async Task V15_an_injection_string_in_the_login_username_or_password_is_the_generic_login_failure(string payload)
    {
        var victim = ClientFlows.UniqueName("victim");
        await _http.RegisterOkAsync(victim);

        using var reference = await _http.PasswordGrantAsync(victim, "wrong-but-long-enough-passphrase");
        var expected = (await Refusal.AssertInvalidGrantAsync(reference)).GetRawText();

        foreach (var (username, password) in new[]
        {
            (payload, ClientFlows.Password),
            (payload, payload),
            (victim + payload, ClientFlows.Password),
            (victim, payload),
            (victim, ClientFlows.Password + payload),
        })
        {
            using (var response = await _http.PasswordGrantAsync(username, password))
            {
                Assert.Equal(expected, (await Refusal.AssertInvalidGrantAsync(response)).GetRawText());
            }

            // Baseline: the same victim with an ordinary wrong password (one Argon2id verification, like the probe).
            await AssertNoDelayAsync(
                NoDelay,
                () => _http.PasswordGrantAsync(victim, "wrong-but-long-enough-passphrase"),
                () => _http.PasswordGrantAsync(username, password));
        }
    }
}
