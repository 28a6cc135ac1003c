using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>V05: registration cannot set anything but username, e-mail and password (AZ-04, VAL-01).</summary>
public sealed class RegisterMassAssignmentTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Theory]
    [InlineData("role", "\"admin\"")]
    [InlineData("Role", "\"Admin\"")]
    [InlineData("roles", "[\"admin\"]")]
    [InlineData("isAdmin", "true")]
    [InlineData("id", "\"00000000-0000-0000-0000-000000000001\"")]
    [InlineData("securityStamp", "\"attacker-chosen-stamp\"")]
    [InlineData("securityEpoch", "-1")]
    [InlineData("emailConfirmed", "true")]
    [InlineData("isDisabled", "false")]
    [InlineData("passwordHash", "\"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"")]
    public async Task V05_an_extra_privileged_member_is_400_and_creates_nothing(string member, string value)
    {
        var username = ClientFlows.UniqueName("eve");
        var body = Fill($$"""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD","{{member}}":{{value}}}""", username);
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", body);

        await AssertInvalidFieldAsync(response, member, ClientFlows.Password, "attacker-chosen-stamp");
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Fact]
    public async Task V05_a_normal_registration_gets_only_the_user_role()
    {
        var username = ClientFlows.UniqueName("eve");
        var id = await _http.RegisterOkAsync(username);
        var tokens = await _http.LoginAsync(username);

        using var me = await _http.GetWithTokenAsync("api/me", tokens.AccessToken);

        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var body = await me.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(["user"], body.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        await using var scope = Server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var user = await users.FindByIdAsync(id.ToString());
        Assert.NotNull(user);
        Assert.Equal(["user"], await users.GetRolesAsync(user));
        Assert.False(user.IsDisabled);
    }
}
