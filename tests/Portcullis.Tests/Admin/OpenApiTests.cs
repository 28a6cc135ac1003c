using System.Net;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Admin;

public sealed class OpenApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task The_OpenAPI_document_needs_a_token_and_shows_each_admin_routes_permission()
    {
        var http = fixture.Client;
        using (var anonymous = await http.GetAsync("openapi/v1.json"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var (_, _, tokens) = await http.NewUserAsync("reader");
        using var response = await http.GetWithTokenAsync("openapi/v1.json", tokens.AccessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var listUsers = document.GetProperty("paths").GetProperty("/api/admin/users").GetProperty("get");
        Assert.Equal("users:read", listUsers.GetProperty("x-required-permission").GetString());
        Assert.Contains("users:read", listUsers.GetProperty("description").GetString(), StringComparison.Ordinal);
        var rotate = document.GetProperty("paths").GetProperty("/api/admin/keys/rotate").GetProperty("post");
        Assert.Equal("keys:rotate", rotate.GetProperty("x-required-permission").GetString());
    }
}
