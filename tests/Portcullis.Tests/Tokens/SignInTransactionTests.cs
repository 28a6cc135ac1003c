using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Text.Json;
using OpenIddict.Server;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// A token response's writes are one transaction, committed before the response is applied
/// (<see cref="SignInTransaction"/>): one disk flush per grant instead of four or five, and no half-issued set.
/// </summary>
public sealed class SignInTransactionTests
{
    [Fact]
    public void The_transaction_begins_before_the_first_write_and_commits_after_the_last_token_and_before_any_response()
    {
        var signIn = OpenIddictServerHandlers.DefaultHandlers.Where(d => d.ContextType == typeof(OpenIddictServerEvents.ProcessSignInContext)).ToList();
        var applies = signIn.Where(d => d.ServiceDescriptor.ServiceType.Name.StartsWith("Apply", StringComparison.Ordinal)).ToList();
        var generates = signIn.Where(d => d.ServiceDescriptor.ServiceType.Name.StartsWith("Generate", StringComparison.Ordinal)
            || d.ServiceDescriptor.ServiceType.Name.StartsWith("Attach", StringComparison.Ordinal)
            || d.ServiceDescriptor.ServiceType.Name.StartsWith("Update", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(applies);
        Assert.NotEmpty(generates);

        Assert.True(SignInTransaction.Begin.Order < OpenIddictServerHandlers.RedeemTokenEntry.Descriptor.Order);
        Assert.True(SignInTransaction.Begin.Order > OpenIddictServerHandlers.ValidateSignInDemand.Descriptor.Order);
        Assert.All(generates, g => Assert.True(g.Order < SignInTransaction.Commit.Order, $"{g.ServiceDescriptor.ServiceType.Name} runs after the commit"));
        // ApplyTokenResponse writes the answer and ends the chain: a commit after it would never run.
        Assert.All(applies, a => Assert.True(SignInTransaction.Commit.Order < a.Order, $"{a.ServiceDescriptor.ServiceType.Name} runs before the commit"));
    }

    [Theory]
    [InlineData("password")]
    [InlineData("refresh_token")]
    [InlineData("client_credentials")]
    public async Task Each_grant_commits_its_sign_in_once_and_what_it_committed_works(string grant)
    {
        await using var server = await PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            // EF Core's transaction and command events, to count the commits made while a request is handled.
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Transaction"] = "Debug",
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Information",
        });
        using var http = server.CreateClient();
        var (_, username, tokens) = await http.NewUserAsync("tx");
        var cli = await server.RunCliAsync(null, "clients", "add", "--name", "tx", "--scopes", "orders", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var client = JsonDocument.Parse(cli.Out).RootElement;
        var (clientId, secret) = (client.GetProperty("client_id").GetString()!, client.GetProperty("client_secret").GetString()!);
        server.Logs.Drain();

        // The request carries a known W3C trace id, and the log lines written while it is handled carry it as TraceId.
        var traceId = System.Diagnostics.ActivityTraceId.CreateRandom().ToHexString();
        http.DefaultRequestHeaders.Add("traceparent", $"00-{traceId}-{System.Diagnostics.ActivitySpanId.CreateRandom().ToHexString()}-01");
        using var response = grant switch
        {
            "password" => await http.PasswordGrantAsync(username, ClientFlows.Password),
            "refresh_token" => await http.RefreshAsync(tokens.RefreshToken!),
            _ => await http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret, ["scope"] = "orders",
            })),
        };
        http.DefaultRequestHeaders.Remove("traceparent");
        var issued = await response.ReadTokensAsync();
        var units = CommitsOf(server.Logs.Drain(), traceId, out var trace);

        // Everything the grant writes — a login's session, a refresh's claim of the old token (S06), the token entries,
        // the redemption, the audit event — is one commit (before: four to five for a password login or a refresh).
        Assert.True(units == 1, trace);

        // And what was committed is what the client holds: the access token works, a new refresh token refreshes.
        using (var me = await http.GetWithTokenAsync("api/me", issued.AccessToken))
        {
            Assert.Equal(grant == "client_credentials" ? HttpStatusCode.Forbidden : HttpStatusCode.OK, me.StatusCode);
        }

        if (issued.RefreshToken is { } refresh)
        {
            using var again = await http.RefreshAsync(refresh);
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
    }

    [Fact]
    public async Task S06_refreshes_refused_after_taking_the_write_turn_give_it_back_so_the_next_grants_are_answered()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var (_, username, tokens) = await http.NewUserAsync("turn");

        // Ten parallel refreshes of one token: each takes the write turn for its claim, one wins, the others are
        // refused after holding it (invalid_grant), and every one must hand it back.
        var answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await http.RefreshAsync(tokens.RefreshToken!);
            return response.StatusCode;
        }));
        Assert.Equal(1, answers.Count(a => a == HttpStatusCode.OK));
        Assert.All(answers, a => Assert.True(a is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"answered {a}"));

        // A turn that was never given back would hold every later grant for the whole storage timeout (30 s).
        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        for (var i = 0; i < 3; i++)
        {
            using var login = await http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password", ["client_id"] = PortcullisServer.ClientId, ["username"] = username,
                ["password"] = ClientFlows.Password, ["scope"] = "openid offline_access",
            }), quick.Token);
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        }
    }

    [Fact]
    public async Task S04_a_refresh_the_endpoint_refuses_after_its_claim_stays_spent_and_gives_the_turn_back()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await PortcullisServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Tokens:SessionAbsoluteLifetime"] = "00:03:00",
                ["Tokens:RefreshTokenIdleLifetime"] = "00:02:00",
            },
            services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(time);
            });
        using var http = server.CreateClient();
        var (_, username, tokens) = await http.NewUserAsync("spent");
        time.Advance(TimeSpan.FromSeconds(90));
        using (var rotated = await http.RefreshAsync(tokens.RefreshToken!))
        {
            tokens = await rotated.ReadTokensAsync();
        }

        // Past the session's absolute lifetime the token entry is still valid to OpenIddict, so the claim succeeds and
        // the endpoint refuses afterwards: the refusal must not undo the claim.
        time.Advance(TimeSpan.FromSeconds(91));
        using (var refused = await http.RefreshAsync(tokens.RefreshToken!))
        {
            await Refusal.AssertInvalidGrantAsync(refused);
        }

        await using (var scope = server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Portcullis.Storage.PortcullisDb>();
            var valid = await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
                .CountAsync(t => t.Type == OpenIddict.Abstractions.OpenIddictConstants.TokenTypeIdentifiers.RefreshToken
                    && t.Status == OpenIddict.Abstractions.OpenIddictConstants.Statuses.Valid);
            Assert.Equal(0, valid); // the first token was redeemed by the rotation, the second by the refused refresh
        }

        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(15)); // the turn was given back
        using var login = await http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = PortcullisServer.ClientId, ["username"] = username,
            ["password"] = ClientFlows.Password, ["scope"] = "openid offline_access",
        }), quick.Token);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
    }

    /// <summary>
    /// The commits a token request made: transactions committed, plus writes that ran outside any transaction (each
    /// its own commit) — from EF Core's command (20101) and transaction (20200 started, 20202 committed, 20203
    /// rolled back) events logged while the request with <paramref name="traceId"/> was handled.
    /// </summary>
    private static int CommitsOf(string logs, string traceId, out string trace)
    {
        var units = 0;
        var open = false;
        var lines = new List<string>();
        foreach (var line in logs.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var entry = JsonDocument.Parse(line).RootElement;
            if (!entry.TryGetProperty("State", out var state) || !state.TryGetProperty("TraceId", out var id0) || id0.GetString() != traceId)
            {
                continue;
            }

            var id = entry.GetProperty("EventId").GetInt32();
            var message = entry.GetProperty("Message").GetString() ?? "";
            switch (id)
            {
                case 20200:
                    open = true;
                    break;
                case 20202:
                    open = false;
                    units++;
                    break;
                case 20203:
                    open = false;
                    break;
                case 20101 when !open && System.Text.RegularExpressions.Regex.IsMatch(message, @"\b(INSERT|UPDATE|DELETE)\b"):
                    units++;
                    break;
                default:
                    continue;
            }

            lines.Add($"{id} {(message.Length > 160 ? message[..160] : message)}");
        }

        trace = string.Join('\n', lines);
        return units;
    }
}
