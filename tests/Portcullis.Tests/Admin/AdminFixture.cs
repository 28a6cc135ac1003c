using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Admin;

/// <summary>A server with a first administrator created the way an operator does it: the CLI, password on stdin.</summary>
public class AdminFixture : ServerFixture
{
    public string AdminName { get; } = ClientFlows.UniqueName("root");

    public Guid AdminId { get; private set; }

    protected override async Task StartedAsync()
    {
        var created = await Server.RunCliAsync(ClientFlows.Password + "\n", "admin", "create", "--username", AdminName, "--password-stdin", "--json");
        Assert.True(created.ExitCode == 0, created.Error);
        AdminId = JsonDocument.Parse(created.Out).RootElement.GetProperty("id").GetGuid();
    }

    /// <summary>A fresh admin access token, through the real token endpoint.</summary>
    public async Task<string> AdminTokenAsync() => (await Client.LoginAsync(AdminName)).AccessToken;
}
