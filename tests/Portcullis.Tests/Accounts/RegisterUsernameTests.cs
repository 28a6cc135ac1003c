using System.Net;
using System.Text;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>Usernames are canonical and unique after NFKC and case folding; look-alikes are refused (AUTH-12, VAL-08).</summary>
public sealed class RegisterUsernameTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task V11_case_and_width_variants_of_a_taken_username_are_409_and_create_nothing()
    {
        var alice = ClientFlows.UniqueName("alice");
        await _http.RegisterOkAsync(alice);
        var before = await Server.CountUsersAsync();

        // Each variant has its own e-mail, so the 409 can only come from the username.
        foreach (var variant in new[] { char.ToUpperInvariant(alice[0]) + alice[1..], alice.ToUpperInvariant(), FullWidth(alice), FullWidth(alice.ToUpperInvariant()) })
        {
            using var response = await _http.RegisterWithEmailAsync(variant, UniqueEmail());
            var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Conflict, secrets: [ClientFlows.Password]);
            Assert.Equal("https://portcullis.dev/problems/conflict", problem.GetProperty("type").GetString());
        }

        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V11_a_taken_username_with_a_trailing_space_never_creates_an_account()
    {
        var alice = ClientFlows.UniqueName("alice");
        await _http.RegisterOkAsync(alice);
        var before = await Server.CountUsersAsync();

        foreach (var variant in new[] { alice + " ", " " + alice, alice + "\u00A0", alice + "\t" })
        {
            using var response = await _http.RegisterWithEmailAsync(variant, UniqueEmail());
            Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Conflict, $"Got {(int)response.StatusCode}.");
            await ProblemAssert.IsProblemAsync(response, response.StatusCode, secrets: [ClientFlows.Password]);
        }

        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V11_login_is_case_insensitive_for_the_username()
    {
        // Documented behaviour: usernames compare by their NFKC + lower-case key, at registration and at login,
        // so "ALICE" (or the full-width form) logs in to "alice". Only the password is compared exactly.
        var alice = ClientFlows.UniqueName("alice");
        var id = await _http.RegisterOkAsync(alice);

        foreach (var variant in new[] { alice.ToUpperInvariant(), FullWidth(alice) })
        {
            var tokens = await _http.LoginAsync(variant);
            using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
            Assert.Equal(HttpStatusCode.OK, me.StatusCode);
            Assert.Contains(id.ToString(), await me.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        }
    }

    [Theory]
    [InlineData("ali\u200Bce")]
    [InlineData("ali\u200Dce")]
    [InlineData("ali\uFEFFce")]
    [InlineData("admin\u202E")]
    [InlineData("admin\u2066x")]
    [InlineData("bob\u0007")]
    [InlineData("bob\r\nevil")]
    [InlineData("bob\u0085x")]
    [InlineData("p\u0430ypal")] // Latin with a Cyrillic "а"
    [InlineData("\u0440\u0430ypal")] // Cyrillic "ра" then Latin
    [InlineData("bob evil")]
    [InlineData("bob@evil")]
    [InlineData("bob/evil")]
    [InlineData("ab")]
    public async Task V13_control_format_bidi_mixed_script_and_punctuated_usernames_are_400_and_create_nothing(string prefix)
    {
        var username = prefix + Guid.NewGuid().ToString("N")[..8].Replace('a', '1').Replace('b', '2').Replace('c', '3').Replace('d', '4').Replace('e', '5').Replace('f', '6');
        if (prefix == "ab")
        {
            username = prefix; // too short on its own
        }

        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterWithEmailAsync(username, UniqueEmail());

        await AssertInvalidFieldAsync(response, "username", ClientFlows.Password);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Theory]
    [InlineData("a@example.com\r\nBcc: x@y")]
    [InlineData("a@example.com\nBcc: x@y.example")]
    [InlineData("a@example.com\u0000")]
    [InlineData("a b@example.com")]
    [InlineData("a@@example.com")]
    [InlineData("a@example")]
    [InlineData("")]
    public async Task V13_an_e_mail_with_controls_or_a_bad_shape_is_400_and_creates_nothing(string email)
    {
        var username = ClientFlows.UniqueName("mail");
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterWithEmailAsync(username, email);

        await AssertInvalidFieldAsync(response, "email", ClientFlows.Password, "Bcc: x@y");
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Fact]
    public async Task V13_a_300_character_e_mail_is_400_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("mail");
        var email = new string('a', 60) + "@" + string.Join('.', Enumerable.Repeat(new string('b', 60), 4)) + ".example";
        email = email[..(300 - ".com".Length)] + ".com";
        Assert.Equal(300, email.Length);
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterWithEmailAsync(username, email);

        await AssertInvalidFieldAsync(response, "email", ClientFlows.Password, new string('b', 60));
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    private static string FullWidth(string ascii)
    {
        var builder = new StringBuilder(ascii.Length);
        foreach (var c in ascii)
        {
            builder.Append(c is > ' ' and <= '~' ? (char)(c + 0xFEE0) : c);
        }

        return builder.ToString();
    }
}
