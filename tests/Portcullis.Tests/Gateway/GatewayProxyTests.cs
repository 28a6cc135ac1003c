using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Storage;
using Portcullis.Tests.Hosting;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Gateway;

/// <summary>Proxying through a real upstream: who gets through per role and scope, what the upstream sees, faults.</summary>
public sealed class GatewayProxyTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private readonly HttpClient _http = fixture.Client;

    internal static async Task<int> CountAuditAsync(PortcullisServer server, int eventId)
    {
        await using var scope = server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.CountAsync(e => e.EventId == eventId);
    }

    [Fact]
    public async Task A_user_reaches_the_upstream_with_the_verified_identity_in_headers()
    {
        var (id, _, tokens) = await _http.NewUserAsync();

        using var response = await _http.SendAsync(HttpMethod.Get, "echo/items?x=1", tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("/echo/items", echo.GetProperty("path").GetString());
        var headers = echo.GetProperty("headers");
        Assert.Equal(id.ToString(), headers.GetProperty("x-portcullis-user-id").GetString());
        Assert.Equal("user", headers.GetProperty("x-portcullis-roles").GetString());
        Assert.Equal(PortcullisServer.ClientId, headers.GetProperty("x-portcullis-client-id").GetString());
        Assert.False(headers.TryGetProperty("authorization", out _), "the access token is not forwarded unless the route says so");
    }

    [Fact]
    public async Task Z01_a_gateway_route_without_a_token_is_401_problem_and_the_upstream_is_not_called()
    {
        var before = fixture.Upstream.Requests;
        using var response = await _http.SendAsync(HttpMethod.Get, "echo/items", token: null);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal(before, fixture.Upstream.Requests);
    }

    [Fact]
    public async Task Z01_gateway_401s_are_audited_and_their_repeats_aggregated_so_the_store_cannot_be_flooded()
    {
        var aggregator = fixture.Server.Services.GetRequiredService<Portcullis.Audit.DenialAggregator>();
        await aggregator.FlushAsync(default); // start from an empty interval: this test's first 401 is written at once

        async Task<(int Rows, long Represented)> CountAsync()
        {
            await using var scope = fixture.Server.Services.CreateAsyncScope();
            var rows = await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.AsNoTracking()
                .Where(e => e.EventId == 6004 && e.Target == "route:echo").Select(e => e.Details).ToListAsync();
            var represented = rows.Sum(d => d is not null && JsonDocument.Parse(d).RootElement.TryGetProperty("count", out var c) ? c.GetInt64() : 1);
            return (rows.Count, represented);
        }

        var before = await CountAsync();
        var upstream = fixture.Upstream.Requests;
        for (var i = 0; i < 5; i++)
        {
            using var response = await _http.SendAsync(HttpMethod.Get, "echo/items", token: i % 2 == 0 ? null : "not.a.token");
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized);
        }

        Assert.Equal(upstream, fixture.Upstream.Requests);
        var written = await CountAsync();
        Assert.Equal(before.Rows + 1, written.Rows); // the first at once; the other four only counted so far
        await aggregator.FlushAsync(default);
        var after = await CountAsync();
        Assert.Equal(before.Represented + 5, after.Represented);
        Assert.InRange(after.Rows - before.Rows, 2, 3); // first + one summary (a timer flush in between may split it)
    }

    [Fact]
    public async Task Z02_a_user_is_refused_the_admin_route_with_a_403_naming_the_role_and_an_audit_event()
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var audits = await CountAuditAsync(fixture.Server, 6001);
        var before = fixture.Upstream.Requests;

        using var response = await _http.SendAsync(HttpMethod.Get, "admin/users", tokens.AccessToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Forbidden, "/forbidden");
        Assert.Equal("admin", problem.GetProperty("missingRole")[0].GetString());
        Assert.Equal(before, fixture.Upstream.Requests);
        Assert.Equal(audits + 1, await CountAuditAsync(fixture.Server, 6001));
    }

    [Fact]
    public async Task An_admin_reaches_the_admin_route()
    {
        using var response = await _http.SendAsync(HttpMethod.Get, "admin/users", await fixture.AdminTokenAsync());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("admin", echo.GetProperty("headers").GetProperty("x-portcullis-roles").GetString()!.Split(','));
    }

    [Fact]
    public async Task A_client_with_the_scope_passes_and_one_without_it_gets_403_naming_the_scope()
    {
        var (clientId, withScope) = await fixture.ClientTokenAsync("orders");
        var (_, withoutScope) = await fixture.ClientTokenAsync("billing");
        var (_, _, user) = await _http.NewUserAsync();

        using var allowed = await _http.SendAsync(HttpMethod.Get, "orders/1", withScope);
        using var refused = await _http.SendAsync(HttpMethod.Get, "orders/1", withoutScope);
        using var userRefused = await _http.SendAsync(HttpMethod.Get, "orders/1", user.AccessToken);

        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        var headers = (await allowed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("headers");
        Assert.Equal(clientId, headers.GetProperty("x-portcullis-client-id").GetString());
        Assert.Equal("orders", headers.GetProperty("x-portcullis-scopes").GetString());
        Assert.False(headers.TryGetProperty("x-portcullis-user-id", out _), "a client token has no user");
        var problem = await ProblemAssert.IsProblemAsync(refused, HttpStatusCode.Forbidden);
        Assert.Equal("orders", problem.GetProperty("missingScope")[0].GetString());
        await ProblemAssert.IsProblemAsync(userRefused, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Spoofed_identity_headers_are_stripped_before_portcullis_adds_its_own()
    {
        var (id, _, tokens) = await _http.NewUserAsync();

        using var response = await _http.SendAsync(HttpMethod.Get, "echo/x", tokens.AccessToken, null,
            ("X-Portcullis-User-Id", "00000000-0000-0000-0000-000000000001"),
            ("x-portcullis-roles", "admin"),
            ("X-PORTCULLIS-SCOPES", "everything"),
            ("X-Portcullis-Client-Id", "evil"),
            ("X-Portcullis-Assertion", "forged"),
            ("X-Portcullis-Anything", "x"),
            ("X-Forwarded-For", "203.0.113.7"));
        using var anonymous = await _http.SendAsync(HttpMethod.Get, "public/x", null, null,
            ("X-Portcullis-User-Id", "00000000-0000-0000-0000-000000000001"), ("X-Portcullis-Roles", "admin"));

        var headers = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("headers");
        Assert.Equal(id.ToString(), headers.GetProperty("x-portcullis-user-id").GetString());
        Assert.Equal("user", headers.GetProperty("x-portcullis-roles").GetString());
        Assert.Equal("", headers.GetProperty("x-portcullis-scopes").GetString()!.Replace("openid", "").Replace("offline_access", "").Trim());
        Assert.Equal(PortcullisServer.ClientId, headers.GetProperty("x-portcullis-client-id").GetString());
        Assert.False(headers.TryGetProperty("x-portcullis-assertion", out _));
        Assert.False(headers.TryGetProperty("x-portcullis-anything", out _));
        Assert.Equal("127.0.0.1", headers.GetProperty("x-forwarded-for").GetString()); // replaced, not appended to
        Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
        var anonymousHeaders = (await anonymous.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("headers");
        Assert.DoesNotContain(anonymousHeaders.EnumerateObject(), h => h.Name.StartsWith("x-portcullis-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Z04_BOLA_the_upstream_keyed_on_the_forwarded_user_id_shows_a_note_only_to_its_owner()
    {
        var (alice, _, aliceTokens) = await _http.NewUserAsync("alice");
        var (_, _, bobTokens) = await _http.NewUserAsync("bob");
        var note = Guid.NewGuid().ToString("N");
        fixture.Upstream.Notes[note] = alice.ToString();

        using var owner = await _http.SendAsync(HttpMethod.Get, $"notes/{note}", aliceTokens.AccessToken);
        using var other = await _http.SendAsync(HttpMethod.Get, $"notes/{note}", bobTokens.AccessToken);
        using var spoofed = await _http.SendAsync(HttpMethod.Get, $"notes/{note}", bobTokens.AccessToken, null, ("X-Portcullis-User-Id", alice.ToString()));

        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, spoofed.StatusCode);
    }

    [Fact]
    public async Task A_route_that_forwards_the_token_passes_authorization_others_never_do()
    {
        var (_, _, tokens) = await _http.NewUserAsync();

        using var response = await _http.SendAsync(HttpMethod.Get, "token-echo/x", tokens.AccessToken);

        var headers = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("headers");
        Assert.Equal($"Bearer {tokens.AccessToken}", headers.GetProperty("authorization").GetString());
    }

    [Fact]
    public async Task An_assertion_is_a_short_lived_jwt_signed_by_portcullis_for_this_route_only()
    {
        var (id, _, tokens) = await _http.NewUserAsync();

        using var response = await _http.SendAsync(HttpMethod.Get, "assertion-echo/x", tokens.AccessToken);

        var headers = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("headers");
        Assert.False(headers.TryGetProperty("authorization", out _));
        var assertion = headers.GetProperty("x-portcullis-assertion").GetString()!;
        var keys = fixture.Server.Services.GetRequiredService<KeyRing>();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            ValidIssuer = fixture.Server.BaseAddress.AbsoluteUri,
            ValidAudience = "assertion",
            ValidTypes = ["portcullis-assertion+jwt"],
            IssuerSigningKeyResolver = (_, _, kid, _) => keys.Find(kid) is { } key ? [key] : [],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var token = (JsonWebToken)result.SecurityToken;
        Assert.Equal(id.ToString(), token.Subject);
        Assert.InRange(token.ValidTo - token.IssuedAt, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(61));
        // The assertion is not an access token: Portcullis's own API refuses it, on a route the access token opens.
        using (var control = await _http.GetWithTokenAsync("api/me", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, control.StatusCode);
        }

        using var replay = await _http.GetWithTokenAsync("api/me", assertion);
        await Refusal.AssertGeneric401Async(replay);
    }

    [Fact]
    public async Task F_upstream_refusing_connections_is_502_problem_without_internals_and_audited()
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var audits = await CountAuditAsync(fixture.Server, 6003);

        using var response = await _http.SendAsync(HttpMethod.Get, "down/x", tokens.AccessToken);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadGateway, "/upstream-unavailable");
        Assert.DoesNotContain("127.0.0.1", problem.GetRawText(), StringComparison.Ordinal);
        Assert.DoesNotContain("refused", problem.GetRawText(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(audits + 1, await CountAuditAsync(fixture.Server, 6003));
    }

    [Fact]
    public async Task F_a_slow_upstream_is_504_problem_after_the_route_timeout()
    {
        var (_, _, tokens) = await _http.NewUserAsync();

        using var response = await _http.SendAsync(HttpMethod.Get, "slow/x", tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.GatewayTimeout, "/upstream-timeout");
    }

    [Fact]
    public async Task R01_a_gateway_route_rate_limit_answers_429_with_headers_after_five_per_minute()
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 7; i++)
        {
            last?.Dispose();
            last = await _http.SendAsync(HttpMethod.Get, "limited/x", tokens.AccessToken);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.OK));
        await ProblemAssert.IsProblemAsync(last!, HttpStatusCode.TooManyRequests);
        Assert.True(last!.Headers.Contains("Retry-After"));
        Assert.Contains("five-per-minute", last.Headers.GetValues("RateLimit-Policy").Single(), StringComparison.Ordinal);
        last.Dispose();
    }

    [Fact]
    public async Task A_method_the_route_does_not_serve_never_reaches_the_upstream()
    {
        var (_, _, tokens) = await _http.NewUserAsync();
        var before = fixture.Upstream.Requests;

        using var response = await _http.SendAsync(HttpMethod.Delete, "echo/x", tokens.AccessToken);

        Assert.True(response.StatusCode is HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotFound, $"{response.StatusCode}");
        Assert.Equal(before, fixture.Upstream.Requests);
    }

    [Fact]
    public void Z01_every_gateway_endpoint_has_an_authorization_decision_and_a_rate_limit_policy()
    {
        var endpoints = fixture.Server.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<Portcullis.Gateway.GatewayRoute>() is not null).ToList();

        Assert.Equal(15, endpoints.Count); // every route GatewayFixture declares
        foreach (var endpoint in endpoints)
        {
            var route = endpoint.Metadata.GetMetadata<Portcullis.Gateway.GatewayRoute>()!;
            var anonymous = endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null;
            Assert.True(anonymous == route.Anonymous, $"{route.Name}: anonymous only when declared");
            Assert.True(anonymous || endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Any(a => a.Policy == route.PolicyName), $"{route.Name}: no policy");
            var limits = endpoint.Metadata.GetOrderedMetadata<EnableRateLimitingAttribute>().Select(a => a.PolicyName).ToList();
            Assert.True(route.RateLimits.All(limits.Contains), $"{route.Name}: rate limits {string.Join(",", limits)}");
        }
    }

    [Fact]
    public async Task A_role_taken_away_stops_working_at_once_even_with_the_old_token()
    {
        var (_, username, tokens) = await _http.NewUserAsync("demoted");
        using (var before = await _http.SendAsync(HttpMethod.Get, "echo/x", tokens.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        var revoked = await fixture.Server.RunCliAsync(null, "users", "revoke", "--username", username, "--role", "user");
        Assert.True(revoked.ExitCode == 0, revoked.Error);

        var status = HttpStatusCode.OK;
        for (var i = 0; i < 50 && status == HttpStatusCode.OK; i++)
        {
            await Task.Delay(100);
            using var after = await _http.SendAsync(HttpMethod.Get, "echo/x", tokens.AccessToken);
            status = after.StatusCode;
        }

        // The token still says "user": 403 from the current roles (or 401 if the change also ended the token).
        Assert.True(status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"{status}");
    }
}
