using System.Text;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>How passwords are stored (PWD-01..03).</summary>
public sealed class PasswordStorageTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string CurrentParameters = "$argon2id$v=19$m=19456,t=2,p=1$";
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Fact]
    public async Task P01_the_same_password_gives_two_different_salted_argon2id_hashes_and_no_plaintext_is_stored()
    {
        var password = $"shared secret phrase {Guid.NewGuid():N}";
        var first = ClientFlows.UniqueName("twin");
        var second = ClientFlows.UniqueName("twin");
        await _http.RegisterOkAsync(first, password);
        await _http.RegisterOkAsync(second, password);

        var hashes = new List<string>();
        foreach (var username in new[] { first, second })
        {
            var user = await Server.FindUserAsync(username);
            Assert.NotNull(user);
            var hash = user.PasswordHash!;
            Assert.StartsWith(CurrentParameters, hash, StringComparison.Ordinal);
            // PHC string: $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>, both unpadded base64.
            var parts = hash.Split('$');
            Assert.Equal(6, parts.Length);
            Assert.True(FromUnpaddedBase64(parts[4]).Length >= 16, "The salt is shorter than 16 bytes.");
            Assert.True(FromUnpaddedBase64(parts[5]).Length >= 32, "The hash output is shorter than 32 bytes.");
            hashes.Add(hash);
        }

        Assert.NotEqual(hashes[0], hashes[1]);
        Assert.NotEqual(hashes[0].Split('$')[4], hashes[1].Split('$')[4]);
        await AssertNoColumnHoldsAsync(password, first, second);
        await AssertNotInDatabaseFilesAsync(password, control: first);
    }

    [Fact]
    public async Task P02_a_legacy_pbkdf2_hash_still_logs_in_and_is_rewritten_as_argon2id()
    {
        var username = ClientFlows.UniqueName("legacy");
        await _http.RegisterOkAsync(username);
        string legacy;
        await using (var scope = Server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            var user = await db.Users.SingleAsync(u => u.NormalizedUserName == Portcullis.Accounts.UsernameRules.Key(username));
            legacy = new PasswordHasher<User>().HashPassword(user, ClientFlows.Password);
            user.PasswordHash = legacy;
            await db.SaveChangesAsync();
        }

        Assert.StartsWith("AQAAAA", legacy, StringComparison.Ordinal); // Identity V3 (PBKDF2) marker byte 0x01

        // A failed login must not touch the stored hash.
        using (var wrong = await _http.PasswordGrantAsync(username, "wrong-but-long-enough-passphrase"))
        {
            await Refusal.AssertInvalidGrantAsync(wrong);
        }

        Assert.Equal(legacy, (await Server.FindUserAsync(username))!.PasswordHash);

        var tokens = await _http.LoginAsync(username);
        Assert.False(string.IsNullOrEmpty(tokens.AccessToken));
        var rewritten = (await Server.FindUserAsync(username))!.PasswordHash!;
        Assert.StartsWith(CurrentParameters, rewritten, StringComparison.Ordinal);

        // And the new hash verifies the same password.
        Assert.False(string.IsNullOrEmpty((await _http.LoginAsync(username)).AccessToken));
    }

    private async Task AssertNoColumnHoldsAsync(string password, params string[] usernames)
    {
        await using var scope = Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        // Quoted identifiers and @parameters: the same SQL on SQLite and PostgreSQL.
        command.CommandText = "SELECT * FROM \"AspNetUsers\" WHERE \"NormalizedUserName\" IN (@a, @b)";
        foreach (var (name, username) in new[] { ("a", usernames[0]), ("b", usernames[1]) })
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = Portcullis.Accounts.UsernameRules.Key(username);
            command.Parameters.Add(parameter);
        }
        await using var reader = await command.ExecuteReaderAsync();
        var rows = 0;
        while (await reader.ReadAsync())
        {
            rows++;
            for (var i = 0; i < reader.FieldCount; i++)
            {
                var value = reader.IsDBNull(i) ? null : reader.GetValue(i);
                var text = value switch
                {
                    string s => s,
                    byte[] bytes => Encoding.UTF8.GetString(bytes),
                    _ => null,
                };
                if (text is not null)
                {
                    Assert.False(text.Contains(password, StringComparison.OrdinalIgnoreCase), $"Column {reader.GetName(i)} holds the password.");
                    Assert.False(
                        text.Contains(Convert.ToBase64String(Encoding.UTF8.GetBytes(password)), StringComparison.Ordinal),
                        $"Column {reader.GetName(i)} holds the password in base64.");
                }
            }
        }

        Assert.Equal(2, rows);
    }

    /// <summary>The raw files hold no plaintext password, while the same scan does find <paramref name="control"/> (a username).</summary>
    private async Task AssertNotInDatabaseFilesAsync(string password, string control)
    {
        var needle = Encoding.UTF8.GetBytes(password);
        var found = false;
        foreach (var file in await TestDatabase.RawFilesAsync(Server.DataDirectory))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            Assert.True(memory.ToArray().AsSpan().IndexOf(needle) < 0, $"{Path.GetFileName(file)} contains the plaintext password.");
            found |= memory.ToArray().AsSpan().IndexOf(Encoding.UTF8.GetBytes(control)) >= 0;
        }

        Assert.True(found, "The scan did not find the username either: it read the wrong files.");
    }

    private static byte[] FromUnpaddedBase64(string value) =>
        Convert.FromBase64String(value.PadRight(value.Length + ((4 - (value.Length % 4)) % 4), '='));
}
