using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Portcullis.Admin;
using Portcullis.Audit;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tests.Tokens;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// Issue 19's authenticator app and recovery codes through the real pages, in raw HTTP (<see cref="BrowserFlow"/>):
/// enrolment from the account page (QR code, key, first code, ten recovery codes shown once and stored hashed), the
/// sign-in's second step (no session before it; a wrong code refused and throttled; a code works once; a recovery
/// code works once), <c>amr</c>/<c>acr</c> in the tokens, the password grant refused, turning it off; every change
/// audited. Codes are computed here from the key the page shows (RFC 6238, HMAC-SHA1), for the wall clock's step:
/// Identity's provider reads the wall clock.
/// </summary>
public sealed partial class TwoFactorTests(TwoFactorTests.Fixture fixture) : IClassFixture<TwoFactorTests.Fixture>
{
    /// <summary>Three free failures per account, then 30 s: the throttle answers well within a test.</summary>
    public sealed class Fixture : ServerFixture
    {
        protected override Task<Dictionary<string, string?>?> SettingsAsync() => Task.FromResult<Dictionary<string, string?>?>(new()
        {
            ["LoginThrottle:FreeFailuresPerAccount"] = "3",
            ["LoginThrottle:FirstBackoff"] = "00:00:30",
        });
    }

    private const string Redirect = "https://mfa.example/callback";
    private readonly PortcullisServer _server = fixture.Server;

    [Fact]
    public async Task Enrolment_shows_a_QR_code_and_key_takes_a_first_code_and_shows_ten_recovery_codes_stored_hashed()
    {
        var (id, username) = await NewUserAsync();
        using var browser = await SignedInAsync(username);

        using (var start = await browser.SubmitAsync("/account", new Dictionary<string, string>(), ("start", "Set up an authenticator app")))
        {
            Assert.Equal(HttpStatusCode.Found, start.StatusCode);
            Assert.Equal("/account/authenticator", start.Headers.Location!.OriginalString);
        }

        using var page = await browser.GetAsync("/account/authenticator");
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<svg class=\"qr\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("style=", html, StringComparison.Ordinal); // style-src 'self': no inline style
        var key = KeyOf(html);
        _server.Canary.Record(KeyPattern().Match(html).Groups[1].Value.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant());

        // A wrong first code: refused, the app stays off.
        using (var wrong = await browser.PostFormAsync("/account/authenticator", html, new Dictionary<string, string> { ["CurrentPassword"] = ClientFlows.Password, ["Code"] = OtherThan(key) }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
            Assert.Contains("That code is not right", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The right code without the password (AUTH-10: the session alone is not enough): refused too.
        using (var noPassword = await browser.PostFormAsync("/account/authenticator", html, new Dictionary<string, string> { ["CurrentPassword"] = "not the password at all 1234", ["Code"] = Totp(key, Step() + 1) }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, noPassword.StatusCode);
            Assert.Contains("The current password is incorrect.", await noPassword.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.False(await TwoFactorOnAsync(id));

        var codes = await ConfirmAsync(browser, html, key);
        Assert.Equal(10, codes.Count);
        foreach (var code in codes)
        {
            _server.Canary.Record(code); // never in a log line
        }

        Assert.Equal(10, codes.Distinct().Count());
        Assert.True(await TwoFactorOnAsync(id));

        // This browser goes on (a new session), and the account page says the app is on.
        using (var account = await browser.GetAsync("/account"))
        {
            Assert.Equal(HttpStatusCode.OK, account.StatusCode);
            var text = await account.Content.ReadAsStringAsync();
            Assert.Contains("Recovery codes left: 10", text, StringComparison.Ordinal);
            Assert.Contains("Turn off the authenticator app", text, StringComparison.Ordinal);
        }

        // The codes are shown once: the enrolment page now sends back to the account page.
        using (var again = await browser.GetAsync("/account/authenticator"))
        {
            Assert.Equal(HttpStatusCode.Found, again.StatusCode);
        }

        // Stored hashed: no recovery code in clear anywhere in the user's token rows.
        await using (var scope = _server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var rows = await db.Set<IdentityUserToken<Guid>>().AsNoTracking().Where(t => t.UserId == id).ToListAsync();
            var stored = Assert.Single(rows, r => r.Name == "RecoveryCodes").Value!;
            Assert.Equal(10, stored.Split(';').Length);
            Assert.All(codes, code => Assert.DoesNotContain(code, string.Concat(rows.Select(r => r.Value)), StringComparison.OrdinalIgnoreCase));
            Assert.All(stored.Split(';'), hash => Assert.StartsWith("sha256:", hash, StringComparison.Ordinal));
        }

        Assert.Equal(1, await AuditCountAsync(AuditEvents.SecondFactorEnabled, id));
        Assert.True(await AuditCountAsync(AuditEvents.SecondFactorFailed, id) >= 1);
    }

    [Fact]
    public async Task Sign_in_then_asks_for_a_code_with_no_session_before_it_and_a_code_works_once()
    {
        var (id, username, key, _) = await EnrolledUserAsync();

        using var browser = new BrowserFlow(_server);
        using (var password = await browser.SubmitAsync("/signin", Credentials(username)))
        {
            Assert.Equal(HttpStatusCode.Found, password.StatusCode);
            Assert.Equal("/signin/code", password.Headers.Location!.OriginalString);
        }

        // The right password alone is no session: the account page still asks to sign in.
        Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
        using (var account = await browser.GetAsync("/account"))
        {
            Assert.Equal(HttpStatusCode.Found, account.StatusCode);
            Assert.StartsWith("/signin", account.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }

        using (var wrong = await browser.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = OtherThan(key) }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
            Assert.Contains("The code is incorrect or was already used.", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var code = Totp(key, Step());
        using (var right = await browser.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = code }))
        {
            Assert.Equal(HttpStatusCode.Found, right.StatusCode);
            Assert.Equal("/account", right.Headers.Location!.OriginalString);
        }

        Assert.Contains(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
        Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis-2fa");
        using (var account = await browser.GetAsync("/account"))
        {
            Assert.Equal(HttpStatusCode.OK, account.StatusCode);
        }

        // The same code again, from another browser with the right password: refused (RFC 6238 §5.2).
        using var replay = new BrowserFlow(_server);
        using (var password = await replay.SubmitAsync("/signin", Credentials(username)))
        {
            Assert.Equal("/signin/code", password.Headers.Location!.OriginalString);
        }

        using (var replayed = await replay.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = code }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, replayed.StatusCode);
        }

        // The next code still works.
        using (var next = await replay.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = Totp(key, Step() + 1) }))
        {
            Assert.Equal(HttpStatusCode.Found, next.StatusCode);
        }

        Assert.True(await AuditCountAsync(AuditEvents.SecondFactorFailed, id) >= 2);
    }

    [Fact]
    public async Task Two_sign_ins_racing_with_one_code_get_one_session()
    {
        var (_, username, key, codes) = await EnrolledUserAsync();
        foreach (var code in new[] { Totp(key, Step()), codes[0] })
        {
            using var first = new BrowserFlow(_server);
            using var second = new BrowserFlow(_server);
            var pages = new List<string>();
            foreach (var browser in new[] { first, second })
            {
                using (await browser.SubmitAsync("/signin", Credentials(username)))
                {
                }

                using var page = await browser.GetAsync("/signin/code");
                pages.Add(await page.Content.ReadAsStringAsync());
            }

            var form = new Dictionary<string, string> { ["Code"] = code };
            var answers = await Task.WhenAll(first.PostFormAsync("/signin/code", pages[0], form), second.PostFormAsync("/signin/code", pages[1], form));
            var statuses = string.Join(", ", answers.Select(a => $"{(int)a.StatusCode} {a.Headers.Location}"));
            // One sign-in completes (a redirect onward, not back to /signin). The other gets no session: its code is
            // refused (400), or — when the winner's recovery code ended every session and so changed the stamp its
            // pending sign-in is bound to — it is sent back to /signin to start again.
            static bool SentBack(HttpResponseMessage a) =>
                a.StatusCode == HttpStatusCode.Found && a.Headers.Location?.OriginalString == "/signin";
            Assert.True(answers.Count(a => a.StatusCode == HttpStatusCode.Found && !SentBack(a)) == 1, statuses);
            Assert.True(answers.Count(a => a.StatusCode == HttpStatusCode.BadRequest || SentBack(a)) == 1, statuses);
            foreach (var answer in answers)
            {
                answer.Dispose();
            }
        }
    }

    [Fact]
    public async Task The_code_page_needs_the_right_password_first_and_waits_five_minutes_for_the_code()
    {
        var time = new SteppingClock();
        await using var server = await PortcullisServer.StartAsync(services: services =>
        {
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(time);
        });
        var (_, username, key, _) = await EnrolledUserAsync(server);

        // Without the password step, or with a made-up cookie: back to the sign-in page.
        using var browser = new BrowserFlow(server);
        using (var none = await browser.GetAsync("/signin/code"))
        {
            Assert.Equal(HttpStatusCode.Found, none.StatusCode);
            Assert.Equal("/signin", none.Headers.Location!.OriginalString);
        }

        browser.Cookies.Add(browser.Origin, new Cookie("__Host-portcullis-2fa", "CfDJ8forged") { Secure = true, Path = "/" });
        using (var forged = await browser.GetAsync("/signin/code"))
        {
            Assert.Equal(HttpStatusCode.Found, forged.StatusCode);
        }

        using (await browser.SubmitAsync("/signin", Credentials(username)))
        {
        }

        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromSeconds(1));
        using (var before = await browser.GetAsync("/signin/code"))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode); // one second before the end
        }

        var html = await (await browser.GetAsync("/signin/code")).Content.ReadAsStringAsync();
        time.Advance(TimeSpan.FromSeconds(1));
        using (var at = await browser.PostFormAsync("/signin/code", html, new Dictionary<string, string> { ["Code"] = Totp(key, Step()) }))
        {
            Assert.Equal(HttpStatusCode.Found, at.StatusCode); // at the end: gone, even with the right code
            Assert.Equal("/signin", at.Headers.Location!.OriginalString);
        }

        Assert.DoesNotContain(browser.Cookies.GetAllCookies(), c => c.Name == "__Host-portcullis");
    }

    [Fact]
    public async Task Wrong_codes_are_throttled_per_account()
    {
        var (id, username, key, _) = await EnrolledUserAsync();
        using var browser = new BrowserFlow(_server);
        using (await browser.SubmitAsync("/signin", Credentials(username)))
        {
        }

        // Three free failures, the fourth starts the backoff; then even the right code waits.
        for (var i = 0; i < 4; i++)
        {
            using var wrong = await browser.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = OtherThan(key) });
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        using (var throttled = await browser.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = Totp(key, Step()) }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
            Assert.True(throttled.Headers.RetryAfter is not null);
        }

        // Signing in with the password again does not clear the code throttle.
        using var other = new BrowserFlow(_server);
        using (await other.SubmitAsync("/signin", Credentials(username)))
        {
        }

        using (var still = await other.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = Totp(key, Step()) }))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, still.StatusCode);
        }

        Assert.True(await AuditCountAsync(AuditEvents.SecondFactorThrottled, id) >= 2);
    }

    [Fact]
    public async Task A_recovery_code_signs_in_once_and_ends_the_other_sessions()
    {
        var (id, username, _, codes) = await EnrolledUserAsync();
        using var first = new BrowserFlow(_server);
        using var second = new BrowserFlow(_server);

        using (await first.SubmitAsync("/signin", Credentials(username)))
        {
        }

        using (var used = await first.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = codes[3].ToLowerInvariant() }))
        {
            Assert.Equal(HttpStatusCode.Found, used.StatusCode);
            Assert.Equal("/account", used.Headers.Location!.OriginalString);
        }

        using (var account = await first.GetAsync("/account"))
        {
            Assert.Contains("Recovery codes left: 9", await account.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (await second.SubmitAsync("/signin", Credentials(username)))
        {
        }

        using (var again = await second.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = codes[3] }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        }

        // Using a recovery code ended every other session: a new one (the second browser's) ends the first.
        using (var other = await second.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = codes[4] }))
        {
            Assert.Equal(HttpStatusCode.Found, other.StatusCode);
        }

        using (var ended = await first.GetAsync("/account"))
        {
            Assert.Equal(HttpStatusCode.Found, ended.StatusCode);
        }

        Assert.Equal(2, await AuditCountAsync(AuditEvents.RecoveryCodeUsed, id));
    }

    [Fact]
    public async Task Tokens_from_a_two_factor_sign_in_carry_amr_and_acr_and_a_password_only_one_says_so()
    {
        var clientId = (await BrowserFlow.RegisterClientAsync(_server, new ClientAdministration.ClientSpec(
            "MFA app", ["openid", "profile", "offline_access"], "public", [Redirect], [], FirstParty: true))).ClientId;

        var (_, username, key, codes) = await EnrolledUserAsync();
        using (var browser = await SignedInWithCodeAsync(username, Totp(key, Step())))
        {
            var (idToken, access, refresh) = await CodeFlowAsync(browser, clientId);
            Assert.Equal(["pwd", "otp", "mfa"], Amr(idToken));
            Assert.Equal(["pwd", "otp", "mfa"], Amr(access));
            Assert.Equal("urn:portcullis:mfa", idToken["acr"]!.GetValue<string>());
            Assert.Equal("urn:portcullis:mfa", access["acr"]!.GetValue<string>());

            // A refresh keeps how the session began.
            using var refreshed = await browser.Http.RefreshAsync(refresh!, clientId);
            var next = Jwt.PayloadOf((await refreshed.ReadTokensAsync()).AccessToken);
            Assert.Equal("urn:portcullis:mfa", next["acr"]!.GetValue<string>());
            Assert.Equal(["pwd", "otp", "mfa"], Amr(next));
        }

        using (var browser = await SignedInWithCodeAsync(username, codes[0]))
        {
            var (idToken, _, _) = await CodeFlowAsync(browser, clientId);
            Assert.Equal(["pwd", "rc", "mfa"], Amr(idToken));
            Assert.Equal("urn:portcullis:mfa", idToken["acr"]!.GetValue<string>());
        }

        var (_, plain) = await NewUserAsync();
        using (var browser = await SignedInAsync(plain))
        {
            var (idToken, access, _) = await CodeFlowAsync(browser, clientId);
            Assert.Equal(["pwd"], Amr(idToken));
            Assert.Equal("urn:portcullis:pwd", idToken["acr"]!.GetValue<string>());
            Assert.Equal("urn:portcullis:pwd", access["acr"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task The_password_grant_is_refused_for_an_account_with_a_second_factor()
    {
        var (id, username, _, _) = await EnrolledUserAsync();
        using var response = await fixture.Client.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        Assert.Equal("This account requires a second factor: use the browser sign-in (authorization code flow).", body.GetProperty("error_description").GetString());
        Assert.False(body.TryGetProperty("access_token", out _));
        Assert.Equal(1, await AuditCountAsync(AuditEvents.SecondFactorRequired, id));

        // A wrong password still gets the one answer for every failed login: the refusal says nothing without it.
        using var wrong = await fixture.Client.PasswordGrantAsync(username, "not the password at all 1234");
        Assert.Equal("The username or password is incorrect.", (await wrong.JsonAsync()).GetProperty("error_description").GetString());
    }

    [Fact]
    public async Task Turning_it_off_needs_the_password_or_a_code_signs_out_everywhere_and_the_password_alone_works_again()
    {
        var (id, username, key, _) = await EnrolledUserAsync();
        using var browser = await SignedInWithCodeAsync(username, Totp(key, Step()));

        using (var wrong = await browser.SubmitAsync("/account", new Dictionary<string, string> { ["Proof"] = "not the password at all 1234" }, ("off", "Turn off the authenticator app")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
            Assert.Contains("The password or code is incorrect.", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.True(await TwoFactorOnAsync(id));
        using (var off = await browser.SubmitAsync("/account", new Dictionary<string, string> { ["Proof"] = Totp(key, Step() + 1) }, ("off", "Turn off the authenticator app")))
        {
            Assert.Equal(HttpStatusCode.Found, off.StatusCode);
            Assert.Equal("/signin?signed_out=true", off.Headers.Location!.OriginalString);
        }

        Assert.False(await TwoFactorOnAsync(id));
        using (var signedOut = await browser.GetAsync("/account"))
        {
            Assert.Equal(HttpStatusCode.Found, signedOut.StatusCode);
        }

        using (var password = await browser.SubmitAsync("/signin", Credentials(username)))
        {
            Assert.Equal("/account", password.Headers.Location!.OriginalString);
        }

        using var grant = await fixture.Client.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.OK, grant.StatusCode);
        Assert.Equal(1, await AuditCountAsync(AuditEvents.SecondFactorDisabled, id));

        // The recovery codes went with it.
        await using var scope = _server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        Assert.Equal(0, await users.CountRecoveryCodesAsync((await users.FindByIdAsync(id.ToString()))!));
    }

    // ---- the kit ----

    private async Task<(Guid Id, string Username)> NewUserAsync(PortcullisServer? server = null)
    {
        var username = ClientFlows.UniqueName("mfa");
        if (server is null)
        {
            return (await fixture.Client.RegisterOkAsync(username), username);
        }

        using var http = server.CreateClient();
        return (await http.RegisterOkAsync(username), username);
    }

    private static Dictionary<string, string> Credentials(string username) => new() { ["Username"] = username, ["Password"] = ClientFlows.Password };

    private async Task<BrowserFlow> SignedInAsync(string username, PortcullisServer? server = null)
    {
        var browser = new BrowserFlow(server ?? _server);
        using var signedIn = await browser.SubmitAsync("/signin", Credentials(username));
        Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        Assert.Equal("/account", signedIn.Headers.Location!.OriginalString);
        return browser;
    }

    private async Task<BrowserFlow> SignedInWithCodeAsync(string username, string code)
    {
        var browser = new BrowserFlow(_server);
        using (var password = await browser.SubmitAsync("/signin", Credentials(username)))
        {
            Assert.Equal("/signin/code", password.Headers.Location!.OriginalString);
        }

        using var signedIn = await browser.SubmitAsync("/signin/code", new Dictionary<string, string> { ["Code"] = code });
        Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        return browser;
    }

    /// <summary>A user with the app on, enrolled through the pages: its key and its recovery codes.</summary>
    private async Task<(Guid Id, string Username, byte[] Key, IReadOnlyList<string> Codes)> EnrolledUserAsync(PortcullisServer? server = null)
    {
        var (id, username) = await NewUserAsync(server);
        using var browser = await SignedInAsync(username, server);
        using (await browser.SubmitAsync("/account", new Dictionary<string, string>(), ("start", "Set up an authenticator app")))
        {
        }

        using var page = await browser.GetAsync("/account/authenticator");
        var html = await page.Content.ReadAsStringAsync();
        var key = KeyOf(html);
        // Enrolment uses the code of the step before: the tests' sign-ins use the current and the next one.
        return (id, username, key, await ConfirmAsync(browser, html, key, Step() - 1));
    }

    private static async Task<IReadOnlyList<string>> ConfirmAsync(BrowserFlow browser, string html, byte[] key, long? step = null)
    {
        using var confirmed = await browser.PostFormAsync("/account/authenticator", html,
            new Dictionary<string, string> { ["CurrentPassword"] = ClientFlows.Password, ["Code"] = Totp(key, step ?? Step()) });
        var text = await confirmed.Content.ReadAsStringAsync();
        Assert.True(confirmed.StatusCode == HttpStatusCode.OK, text);
        Assert.Contains("Save your recovery codes", text, StringComparison.Ordinal);
        return [.. RecoveryCodePattern().Matches(text).Select(m => m.Groups[1].Value)];
    }

    private static async Task<(System.Text.Json.Nodes.JsonObject IdToken, System.Text.Json.Nodes.JsonObject Access, string? Refresh)> CodeFlowAsync(BrowserFlow browser, string clientId)
    {
        var (verifier, challenge) = BrowserFlow.NewPkce();
        var request = BrowserFlow.CodeRequest(clientId, Redirect, challenge, "openid profile offline_access");
        var callback = await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), username: null);
        using var exchanged = await browser.ExchangeAsync(clientId, BrowserFlow.Query(callback)["code"], Redirect, verifier);
        var body = await exchanged.JsonAsync();
        Assert.True(exchanged.StatusCode == HttpStatusCode.OK, body.ToString());
        return (Jwt.PayloadOf(body.GetProperty("id_token").GetString()!), Jwt.PayloadOf(body.GetProperty("access_token").GetString()!),
            body.TryGetProperty("refresh_token", out var refresh) ? refresh.GetString() : null);
    }

    private static string[] Amr(System.Text.Json.Nodes.JsonObject token) => [.. token["amr"]!.AsArray().Select(v => v!.GetValue<string>())];

    private async Task<bool> TwoFactorOnAsync(Guid id)
    {
        await using var scope = _server.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<PortcullisDb>().Users.AsNoTracking().SingleAsync(u => u.Id == id)).TwoFactorEnabled;
    }

    private async Task<int> AuditCountAsync(AuditEvents.Definition definition, Guid userId)
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var target = $"user:{userId}";
        return await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.AsNoTracking()
            .CountAsync(e => e.Name == definition.Name && e.Target == target);
    }

    private static byte[] KeyOf(string html)
    {
        var text = KeyPattern().Match(html) is { Success: true } m ? m.Groups[1].Value : throw new InvalidOperationException("No key on the page:\n" + html);
        return Base32(text.Replace(" ", "", StringComparison.Ordinal));
    }

    internal static long Step() => DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 30;

    /// <summary>RFC 6238 with HMAC-SHA1, six digits (RFC 4226 §5.3 truncation).</summary>
    internal static string Totp(byte[] key, long step)
    {
        var counter = BitConverter.GetBytes(step);
        if (BitConverter.IsLittleEndian)
        {
            Array.Reverse(counter);
        }

#pragma warning disable CA5350 // RFC 6238's default, what every authenticator app computes
        var hash = HMACSHA1.HashData(key, counter);
#pragma warning restore CA5350
        var offset = hash[^1] & 0x0f;
        var binary = ((hash[offset] & 0x7f) << 24) | (hash[offset + 1] << 16) | (hash[offset + 2] << 8) | hash[offset + 3];
        return (binary % 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A six-digit code that is none of the codes the server would accept now.</summary>
    internal static string OtherThan(byte[] key)
    {
        var valid = Enumerable.Range(-3, 7).Select(i => Totp(key, Step() + i)).ToHashSet();
        for (var n = 123456; ; n++)
        {
            var candidate = n.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
            if (!valid.Contains(candidate))
            {
                return candidate;
            }
        }
    }

    internal static byte[] Base32(string text)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = 0;
        var value = 0;
        var bytes = new List<byte>();
        foreach (var c in text.ToUpperInvariant().TrimEnd('='))
        {
            value = (value << 5) | alphabet.IndexOf(c, StringComparison.Ordinal);
            bits += 5;
            if (bits >= 8)
            {
                bytes.Add((byte)(value >> (bits - 8)));
                bits -= 8;
            }
        }

        return [.. bytes];
    }

    [GeneratedRegex("<code class=\"key\" id=\"key\">([a-z2-7 ]+)</code>")]
    private static partial Regex KeyPattern();

    [GeneratedRegex("<li><code>([A-Z0-9-]+)</code></li>")]
    private static partial Regex RecoveryCodePattern();
}
