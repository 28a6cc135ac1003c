using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Admin;

/// <summary>A server with a first administrator created the way an operator does it: the CLI, password on stdin.</summary>
public sealed class AdminFixture : IAsyncLifetime
{
    public PortcullisServer Server { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public string AdminName { get; } = ClientFlows.UniqueName("root");

    public Guid AdminId { get; private set; }

    public async ValueTask InitializeAsync()
    {
        Server = await PortcullisServer.StartAsync();
        Client = Server.CreateClient();
        var created = await Server.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", AdminName, "--password-stdin", "--json");
        Assert.Equal(0, created.ExitCode);
        AdminId = JsonDocument.Parse(created.Out).RootElement.GetProperty("id").GetGuid();
    }

    /// <summary>A fresh admin access token, through the real token endpoint.</summary>
    public async Task<string> AdminTokenAsync() => (await Client.LoginAsync(AdminName)).AccessToken;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}

public static class AdminCalls
{
    public static async Task<HttpResponseMessage> SendAsync(this HttpClient http, HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request);
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response) =>
        await response.Content.ReadFromJsonAsync<JsonElement>();
}
