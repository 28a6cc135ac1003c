using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// Generated client secrets (256 random bits) are stored as a salted HMAC-SHA-256 and compared in constant time;
/// hashes in OpenIddict's PBKDF2 format (stored before, or for a secret too short to be a generated one) still work.
/// </summary>
public sealed class ClientSecretHashTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly PortcullisServer _server = fixture.Server;
    private readonly HttpClient _http = fixture.Client;

    [Fact]
    public async Task A_generated_secret_is_stored_as_a_salted_hmac_and_works_only_exactly()
    {
        var (id, secret) = await AddClientAsync();
        var stored = await StoredSecretAsync(id);

        Assert.StartsWith(ClientSecretManager<object>.Prefix, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
        var (other, otherSecret) = await AddClientAsync();
        Assert.NotEqual(stored.Split('$')[1], (await StoredSecretAsync(other)).Split('$')[1]); // a fresh salt each

        using var ok = await ClientCredentialsAsync(id, secret);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        foreach (var wrong in new[] { Flip(secret), secret + "A", secret[..^1], otherSecret, secret.ToUpperInvariant() })
        {
            using var refused = await ClientCredentialsAsync(id, wrong);
            await Refusal.AssertOAuthErrorAsync(refused, HttpStatusCode.Unauthorized, "invalid_client");
        }
    }

    [Fact]
    public async Task A_secret_in_openiddicts_pbkdf2_format_still_verifies()
    {
        var (id, _) = await AddClientAsync();
        const string legacy = "legacy-short-secret-0123456789"; // shorter than any generated secret: PBKDF2
        await using (var scope = _server.Services.CreateAsyncScope())
        {
            var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
            var application = await manager.FindByClientIdAsync(id, TestContext.Current.CancellationToken);
            await manager.UpdateAsync(application!, legacy, TestContext.Current.CancellationToken);
        }

        var stored = await StoredSecretAsync(id);
        Assert.False(stored.StartsWith(ClientSecretManager<object>.Prefix, StringComparison.Ordinal), stored[..12]);
        Assert.Equal(1, Convert.FromBase64String(stored)[0]); // OpenIddict's PBKDF2 format marker

        using var ok = await ClientCredentialsAsync(id, legacy);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using var refused = await ClientCredentialsAsync(id, Flip(legacy));
        await Refusal.AssertOAuthErrorAsync(refused, HttpStatusCode.Unauthorized, "invalid_client");
    }

    [Theory]
    [InlineData("hmac-sha256$")]
    [InlineData("hmac-sha256$AAAA")]
    [InlineData("hmac-sha256$not base64!$also not")]
    [InlineData("hmac-sha256$AAAAAAAAAAAAAAAAAAAAAA==$")]
    public async Task A_damaged_stored_hash_refuses_the_client_without_a_server_error(string damaged)
    {
        var (id, secret) = await AddClientAsync();
        var updated = await SqlAsync(
            "UPDATE \"OpenIddictApplications\" SET \"ClientSecret\" = @s WHERE \"ClientId\" = @id",
            command => command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken), ("s", damaged), ("id", id));
        Assert.Equal(1, updated);

        using var refused = await ClientCredentialsAsync(id, secret);
        await Refusal.AssertOAuthErrorAsync(refused, HttpStatusCode.Unauthorized, "invalid_client");
    }

    private static string Flip(string secret) => secret[..^1] + (secret[^1] == 'A' ? 'B' : 'A');

    private async Task<(string Id, string Secret)> AddClientAsync()
    {
        var cli = await _server.RunCliAsync(null, "clients", "add", "--name", "hash", "--scopes", "orders", "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var body = JsonDocument.Parse(cli.Out).RootElement;
        return (body.GetProperty("client_id").GetString()!, body.GetProperty("client_secret").GetString()!);
    }

    private Task<HttpResponseMessage> ClientCredentialsAsync(string clientId, string secret) =>
        _http.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret, ["scope"] = "orders",
        }));

    private async Task<string> StoredSecretAsync(string clientId) =>
        (string)(await SqlAsync("SELECT \"ClientSecret\" FROM \"OpenIddictApplications\" WHERE \"ClientId\" = @id",
            command => command.ExecuteScalarAsync(TestContext.Current.CancellationToken), ("id", clientId)))!;

    /// <summary>One parameterized statement on the server's own database (SQLite or PostgreSQL).</summary>
    private async Task<T> SqlAsync<T>(string sql, Func<System.Data.Common.DbCommand, Task<T>> run, params (string Name, string Value)[] parameters)
    {
        await using var scope = _server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Portcullis.Storage.PortcullisDb>();
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }

        return await run(command);
    }
}
