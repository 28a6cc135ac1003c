using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.EntityFrameworkCore.Models;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>Logging in with the password grant: exact verification, one answer for every failure, no GET credentials.</summary>
public sealed class PasswordLoginTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string WrongPassword = "wrong-but-long-enough-passphrase";
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task A02_login_with_a_1100_character_password_gets_the_same_answer_as_a_wrong_password()
    {
        var username = ClientFlows.UniqueName("long");
        await _http.RegisterOkAsync(username);
        var overLong = string.Concat(Enumerable.Repeat("quartz lantern ", 74))[..1100];

        using var wrong = await _http.PasswordGrantAsync(username, WrongPassword);
        using var tooLong = await _http.PasswordGrantAsync(username, overLong);

        Assert.Equal((await Refusal.AssertInvalidGrantAsync(wrong)).GetRawText(), (await Refusal.AssertInvalidGrantAsync(tooLong)).GetRawText());
        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.PasswordGrantAsync(username, overLong));
    }

    [Fact]
    public async Task A04_only_the_exact_password_logs_in_without_trimming_case_folding_or_truncation()
    {
        var username = ClientFlows.UniqueName("ana");
        const string password = "Tranquil Harbor Lanterns 4821";
        await _http.RegisterOkAsync(username, password);

        foreach (var variant in new[] { password + " ", " " + password, password.ToUpperInvariant(), password.ToLowerInvariant() })
        {
            using var response = await _http.PasswordGrantAsync(username, variant);
            await Refusal.AssertInvalidGrantAsync(response);
        }

        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username, password)).AccessToken));
    }

    [Fact]
    public async Task A04_the_first_72_bytes_of_a_100_byte_password_do_not_log_in()
    {
        // bcrypt silently ignores everything after 72 bytes; Argon2id must not.
        var username = ClientFlows.UniqueName("ben");
        const string password = "northern lights dance over frozen fjords while seventeen violet herons glide past copper towers";
        var hundred = password + new string('x', 100 - password.Length);
        Assert.Equal(100, Encoding.UTF8.GetByteCount(hundred));
        await _http.RegisterOkAsync(username, hundred);

        using (var truncated = await _http.PasswordGrantAsync(username, hundred[..72]))
        {
            await Refusal.AssertInvalidGrantAsync(truncated);
        }

        using (var ninetyNine = await _http.PasswordGrantAsync(username, hundred[..99]))
        {
            await Refusal.AssertInvalidGrantAsync(ninetyNine);
        }

        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username, hundred)).AccessToken));
    }

    [Fact]
    public async Task A06_wrong_password_and_unknown_user_get_identical_answers_in_comparable_time()
    {
        var username = ClientFlows.UniqueName("alice");
        await _http.RegisterOkAsync(username);
        var unknown = ClientFlows.UniqueName("nouser");

        using var wrong = await _http.PasswordGrantAsync(username, WrongPassword);
        using var missing = await _http.PasswordGrantAsync(unknown, WrongPassword);
        await AssertSameAnswerAsync(wrong, missing);

        // Interleaved so a burst of load elsewhere hits both series alike.
        var wrongTimes = new List<double>();
        var unknownTimes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var (a, wrongElapsed) = await TimedAsync(() => _http.PasswordGrantAsync(username, WrongPassword));
            var (b, unknownElapsed) = await TimedAsync(() => _http.PasswordGrantAsync(unknown, WrongPassword));
            a.Dispose();
            b.Dispose();
            wrongTimes.Add(wrongElapsed.TotalMilliseconds);
            unknownTimes.Add(unknownElapsed.TotalMilliseconds);
        }

        var wrongMedian = Median(wrongTimes);
        var unknownMedian = Median(unknownTimes);
        Assert.True(
            unknownMedian >= 0.5 * wrongMedian,
            $"Unknown user median {unknownMedian:F1} ms vs wrong password median {wrongMedian:F1} ms: the dummy hash is missing.");
    }

    [Fact]
    public async Task A06_a_disabled_user_with_the_right_password_gets_the_same_answer_as_a_wrong_password()
    {
        var username = ClientFlows.UniqueName("dis");
        await _http.RegisterOkAsync(username);
        var disable = await Server.RunCliAsync(null, "users", "disable", "--username", username);
        Assert.Equal(0, disable.ExitCode);

        using var wrong = await _http.PasswordGrantAsync(username, WrongPassword);
        using var disabled = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        await AssertSameAnswerAsync(wrong, disabled);

        using var disabledWrong = await _http.PasswordGrantAsync(username, WrongPassword);
        await Refusal.AssertInvalidGrantAsync(disabledWrong);
    }

    [Fact]
    public async Task A12_credentials_in_a_GET_query_string_do_not_log_in()
    {
        var username = ClientFlows.UniqueName("query");
        var id = await _http.RegisterOkAsync(username);
        var query = $"connect/token?grant_type=password&username={username}&password={Uri.EscapeDataString(ClientFlows.Password)}&client_id=portcullis&scope=openid";

        using var response = await _http.GetAsync(query);

        // The token endpoint takes POST only: the exact refusal, not merely "not 200" (a 500 is not a refusal).
        var body = await Refusal.AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
        Assert.DoesNotContain(ClientFlows.Password, body.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(0, await SessionsOfAsync(id));
    }

    [Fact]
    public async Task A12_credentials_in_the_query_string_of_a_POST_with_an_empty_body_do_not_log_in()
    {
        var username = ClientFlows.UniqueName("query");
        var id = await _http.RegisterOkAsync(username);
        var query = $"connect/token?grant_type=password&username={username}&password={Uri.EscapeDataString(ClientFlows.Password)}&client_id=portcullis&scope=openid";

        foreach (var contentType in new[] { "application/x-www-form-urlencoded", null })
        {
            using var response = await _http.PostRawAsync(query, [], contentType);
            // Parameters are read from the form body only: the query string's grant is not there at all.
            var body = await Refusal.AssertOAuthErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request");
            Assert.DoesNotContain(ClientFlows.Password, body.GetRawText(), StringComparison.Ordinal);
        }

        Assert.Equal(0, await SessionsOfAsync(id));
    }

    [Fact]
    public async Task A12_an_access_token_in_the_query_string_is_not_accepted()
    {
        var (_, _, tokens) = await _http.NewUserAsync("query");
        using (var header = await _http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, header.StatusCode); // the token itself is good
        }

        using var response = await _http.GetAsync("api/me?access_token=" + Uri.EscapeDataString(tokens.AccessToken));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.DoesNotContain("username", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static async Task AssertSameAnswerAsync(HttpResponseMessage expected, HttpResponseMessage actual)
    {
        var expectedBody = await expected.Content.ReadAsByteArrayAsync();
        var actualBody = await actual.Content.ReadAsByteArrayAsync();
        Assert.Equal(expected.StatusCode, actual.StatusCode);
        Assert.Equal(expectedBody, actualBody);
        Assert.Equal(HeaderNames(expected), HeaderNames(actual));
        await Refusal.AssertInvalidGrantAsync(actual);
    }

    private static List<string> HeaderNames(HttpResponseMessage response) =>
        [.. response.Headers.Concat(response.Content.Headers)
            .Select(h => h.Key.ToLowerInvariant())
            .Where(name => name != "date")
            .Order(StringComparer.Ordinal)];

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    private async Task<int> SessionsOfAsync(Guid userId)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var subject = userId.ToString();
        return await db.Set<OpenIddictEntityFrameworkCoreAuthorization>().CountAsync(a => a.Subject == subject);
    }
}
