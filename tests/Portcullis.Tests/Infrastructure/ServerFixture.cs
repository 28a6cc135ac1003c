namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// One server shared by a test class; tests use unique usernames so they do not interfere. The admin and gateway
/// fixtures build on it: they choose the settings and add what they need once the server runs.
/// </summary>
public class ServerFixture : IAsyncLifetime
{
    public PortcullisServer Server { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    /// <summary>The server's settings (<c>Section:Key</c>), asked for once before it starts; none by default.</summary>
    protected virtual Task<Dictionary<string, string?>?> SettingsAsync() => Task.FromResult<Dictionary<string, string?>?>(null);

    /// <summary>Runs once the server answers, before the first test.</summary>
    protected virtual Task StartedAsync() => Task.CompletedTask;

    public async ValueTask InitializeAsync()
    {
        Server = await PortcullisServer.StartAsync(await SettingsAsync());
        Client = Server.CreateClient();
        await StartedAsync();
    }

    public virtual async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }
}
