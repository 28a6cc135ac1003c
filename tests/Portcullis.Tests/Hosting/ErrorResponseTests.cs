using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Errors are RFC 9457 problem details that say what happened to the client and nothing about the server.</summary>
public sealed class ErrorResponseTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task D02_a_404_is_generic_problem_json()
    {
        var (_, _, tokens) = await _http.NewUserAsync("d02");

        using var response = await _http.GetWithTokenAsync("nope", tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task D02_a_405_is_generic_problem_json()
    {
        var (_, _, tokens) = await _http.NewUserAsync("d02");
        using var request = new HttpRequestMessage(HttpMethod.Delete, "api/me");

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
    }

    [Fact]
    public async Task D02_a_415_is_generic_problem_json_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("d02");
        using var body = new StringContent($"{{\"username\":\"{username}\",\"email\":\"{username}@example.com\",\"password\":\"{ClientFlows.Password}\"}}", Encoding.UTF8, "text/plain");

        using var response = await _http.PostAsync("api/accounts", body);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        Assert.DoesNotContain(ClientFlows.Password, problem.GetRawText(), StringComparison.Ordinal);
        using var login = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.BadRequest, login.StatusCode);
    }

    [Fact]
    public async Task D02_a_415_for_a_signed_in_caller_is_generic_problem_json_too()
    {
        var (_, _, tokens) = await _http.NewUserAsync("d02");
        var username = ClientFlows.UniqueName("d02");
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/accounts")
        {
            Content = new StringContent($"{{\"username\":\"{username}\",\"email\":\"{username}@example.com\",\"password\":\"{ClientFlows.Password}\"}}", Encoding.UTF8, "text/plain"),
        };

        using var response = await _http.SendWithTokenAsync(request, tokens.AccessToken);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        using var login = await _http.PasswordGrantAsync(username, ClientFlows.Password);
        Assert.Equal(HttpStatusCode.BadRequest, login.StatusCode);
    }

    [Fact]
    public async Task F01_an_unhandled_exception_is_a_generic_500_with_a_trace_id()
    {
        using var response = await _http.GetAsync("test/fault");

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.InternalServerError, "server-error");
        var text = problem.GetRawText();
        Assert.DoesNotContain("Deliberate", text, StringComparison.Ordinal);
        Assert.DoesNotContain("/test/fault", text, StringComparison.Ordinal);
        Assert.False(problem.TryGetProperty("detail", out var detail) && detail.ValueKind != System.Text.Json.JsonValueKind.Null);
        Assert.False(problem.TryGetProperty("exception", out _));
        Assert.True(response.Headers.CacheControl?.NoStore, "Cache-Control: no-store is missing on the 500.");
        SecurityHeadersTests.AssertSecurityHeaders(response);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task F01_a_logged_exception_carries_its_stack_trace_only_when_Logging_StackTraces_says_so(bool stackTraces)
    {
        await using var server = await PortcullisServer.StartAsync(
            stackTraces ? new Dictionary<string, string?> { [JsonLineProvider.StackTracesKey] = "true" } : null);
        using var http = server.CreateClient();
        var mark = server.Logs.Mark();

        using (var response = await http.GetAsync("test/fault"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        // The framework logs the unhandled exception (event 1, ExceptionHandlerMiddleware) after the answer is sent.
        LogCapture.Entry? logged = null;
        for (var i = 0; i < 100 && logged is null; i++)
        {
            logged = server.Logs.EntriesSince(mark).FirstOrDefault(e => e.Exception?.Contains("Deliberate test fault", StringComparison.Ordinal) == true);
            if (logged is null)
            {
                await Task.Delay(50);
            }
        }

        Assert.NotNull(logged);
        Assert.StartsWith("System.InvalidOperationException: Deliberate test fault", logged.Exception, StringComparison.Ordinal);
        Assert.Equal(stackTraces, logged.Exception!.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task F01_the_server_keeps_working_after_an_unhandled_exception()
    {
        using (var fault = await _http.GetAsync("test/fault"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, fault.StatusCode);
        }

        using var live = await _http.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var (id, _, tokens) = await _http.NewUserAsync("f01");
        using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal(id, (await me.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task F01_the_product_has_no_fault_endpoint_only_the_test_server_adds_it()
    {
        // The product's endpoints alone, in the Test environment where it once mapped the route itself.
        await using var server = await PortcullisServer.StartAsync(testEndpoints: false);
        using var http = server.CreateClient();

        using var response = await http.GetAsync("test/fault");

        // Unknown paths are refused before authentication (401) or not found (404): never the fault's 500.
        Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized, $"got {(int)response.StatusCode}");
        var routes = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        Assert.NotEmpty(routes);
        Assert.DoesNotContain(routes, e => ("/" + e.RoutePattern.RawText!.TrimStart('/')).StartsWith("/test", StringComparison.OrdinalIgnoreCase));
    }
}
