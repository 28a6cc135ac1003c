using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Tests.Infrastructure;
using Portcullis.Tokens;

namespace Portcullis.Tests.Tokens;

/// <summary>
/// Builds JWTs by hand (raw base64url + System.Security.Cryptography) so a test controls every byte an attacker
/// controls. <see cref="Valid"/> signs with the server's REAL key, read from its KeyRing: claim-level cases then
/// prove a token is refused for the claim under test, not for a bad signature.
/// </summary>
internal sealed class TokenForge(PortcullisServer server, Guid userId)
{
    public ECDsaSecurityKey RealKey => server.Services.GetRequiredService<KeyRing>().Current.SigningKeys[0];

    public string Issuer => server.BaseAddress.AbsoluteUri;

    public JsonObject Header() => new() { ["alg"] = "ES256", ["kid"] = RealKey.KeyId, ["typ"] = "at+jwt" };

    public JsonObject Payload()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new JsonObject
        {
            ["iss"] = Issuer,
            ["aud"] = "portcullis",
            ["sub"] = userId.ToString(),
            ["sep"] = 0,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = now,
            ["exp"] = now + 300,
            ["scope"] = "openid offline_access",
        };
    }

    /// <summary>A token signed with the real key, after the header and payload were changed as the test says.</summary>
    public string Valid(Action<JsonObject>? header = null, Action<JsonObject>? payload = null)
    {
        var h = Header();
        var p = Payload();
        header?.Invoke(h);
        payload?.Invoke(p);
        return Jwt.SignEs256(h, p, RealKey.ECDsa);
    }

    /// <summary>A user the forged tokens can name, with its id.</summary>
    public static async Task<TokenForge> ForNewUserAsync(PortcullisServer server, HttpClient http)
    {
        var id = await http.RegisterOkAsync(ClientFlows.UniqueName("forge"));
        return new TokenForge(server, id);
    }
}

internal static class Jwt
{
    public static string Part(JsonNode node) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(node.ToJsonString()));

    public static string Part(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    public static string SignEs256(JsonObject header, JsonObject payload, ECDsa key)
    {
        var input = Part(header) + "." + Part(payload);
        // JWS ES256 wants the raw r||s form, which is what .NET produces by default (IEEE P1363).
        var signature = key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256);
        return input + "." + Base64UrlEncoder.Encode(signature);
    }

    public static string SignHs256(JsonObject header, JsonObject payload, byte[] secret)
    {
        var input = Part(header) + "." + Part(payload);
        return input + "." + Base64UrlEncoder.Encode(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }

    public static string Unsigned(JsonObject header, JsonObject payload) => Part(header) + "." + Part(payload) + ".";

    public static JsonObject Decode(string token, int part) =>
        JsonNode.Parse(Base64UrlEncoder.Decode(token.Split('.')[part]))!.AsObject();

    public static JsonObject HeaderOf(string token) => Decode(token, 0);

    public static JsonObject PayloadOf(string token) => Decode(token, 1);

    /// <summary>The attacker's public key as a JWK, to embed in a header.</summary>
    public static JsonObject PublicJwk(ECDsa key)
    {
        var p = key.ExportParameters(includePrivateParameters: false);
        return new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X),
            ["y"] = Base64UrlEncoder.Encode(p.Q.Y),
        };
    }
}

/// <summary>Reads stored rows as text, to prove a secret is not stored in clear.</summary>
internal static class StoredText
{
    /// <summary>Every non-null column of every row of <paramref name="table"/>, as text.</summary>
    public static async Task<List<string>> AllValuesAsync(PortcullisServer server, string table)
    {
        await using var scope = server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Portcullis.Storage.PortcullisDb>();
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT * FROM \"{table}\""; // a constant from the test, not input
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<string>();
        while (await reader.ReadAsync())
        {
            for (var i = 0; i < reader.FieldCount; i++)
            {
                if (!await reader.IsDBNullAsync(i))
                {
                    values.Add(Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture) ?? "");
                }
            }
        }

        return values;
    }

    /// <summary>Whether the raw database files (SQLite: main file and WAL; PostgreSQL: the database's heap files)
    /// contain <paramref name="secret"/> in clear.</summary>
    public static async Task<bool> FilesContainAsync(PortcullisServer server, string secret)
    {
        var needle = Encoding.UTF8.GetBytes(secret);
        var files = await TestDatabase.RawFilesAsync(server.DataDirectory);
        Assert.NotEmpty(files); // a scan of nothing proves nothing
        foreach (var path in files)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            if (copy.GetBuffer().AsSpan(0, (int)copy.Length).IndexOf(needle) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
