using System.Net.Http.Json;
using System.Text.Json;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Gateway;

/// <summary>
/// A real upstream and a real Portcullis in front of it, routes declared in configuration the way an operator
/// writes them (Gateway:Routes:N:...). An admin is made with the CLI; users register and log in for real.
/// </summary>
public sealed class GatewayFixture : Admin.AdminFixture
{
    public TestUpstream Upstream { get; private set; } = null!;

    public string SchemaDirectory { get; } = Directory.CreateTempSubdirectory("portcullis-gw-schema-").FullName;

    public const string RegisterSchema = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "type": "object",
          "required": ["username", "age"],
          "additionalProperties": false,
          "properties": {
            "username": { "type": "string", "minLength": 3, "maxLength": 20 },
            "age": { "type": "integer", "minimum": 18 },
            "email": { "type": "string" }
          }
        }
        """;

    /// <summary>Any object at all: what is refused on the route that uses it is refused before the schema.</summary>
    public const string AnyObjectSchema = """
        { "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object" }
        """;

    protected override async Task<Dictionary<string, string?>?> SettingsAsync()
    {
        Upstream = await TestUpstream.StartAsync();
        var schema = Path.Combine(SchemaDirectory, "register.json");
        await File.WriteAllTextAsync(schema, RegisterSchema);
        var anyObject = Path.Combine(SchemaDirectory, "any-object.json");
        await File.WriteAllTextAsync(anyObject, AnyObjectSchema);
        var up = Upstream.Address.AbsoluteUri.TrimEnd('/');
        var down = $"http://127.0.0.1:{PortcullisServer.FreePort()}"; // nothing listens there
        var settings = new Dictionary<string, string?>();
        var index = 0;
        void Route(string name, string match, string methods, string? upstream = null, params (string Key, string Value)[] extra)
        {
            var at = $"Gateway:Routes:{index++}";
            settings[$"{at}:Name"] = name;
            settings[$"{at}:Match"] = match;
            var m = methods.Split(',');
            for (var i = 0; i < m.Length; i++)
            {
                settings[$"{at}:Methods:{i}"] = m[i];
            }

            settings[$"{at}:Upstream"] = upstream ?? up;
            foreach (var (key, value) in extra)
            {
                settings[$"{at}:{key}"] = value;
            }
        }

        Route("echo", "/echo/{**rest}", "GET,POST,PUT", extra: ("Require:Roles:0", "user"));
        Route("admin", "/admin/{**rest}", "GET", extra: ("Require:Roles:0", "admin"));
        Route("orders", "/orders/{**rest}", "GET,POST", extra: ("Require:Scopes:0", "orders"));
        Route("public", "/public/{**rest}", "GET", extra: ("Anonymous", "true"));
        Route("register", "/register", "POST", extra: [("Anonymous", "true"), ("Body:MaxBytes", "1024"), ("Body:Schema", schema)]);
        Route("nested", "/nested", "POST", extra: [("Anonymous", "true"), ("Body:Schema", anyObject)]);
        Route("slow", "/slow/{**rest}", "GET", extra: [("Require:Authenticated", "true"), ("Timeout", "00:00:00.500")]);
        Route("down", "/down/{**rest}", "GET", down, ("Require:Authenticated", "true"));
        Route("notes", "/notes/{id}", "GET", extra: ("Require:Roles:0", "user"));
        Route("token", "/token-echo/{**rest}", "GET", extra: [("Require:Roles:0", "user"), ("Forward", "Token")]);
        Route("assertion", "/assertion-echo/{**rest}", "GET", extra: [("Require:Roles:0", "user"), ("Forward", "Assertion")]);
        Route("upload", "/upload/{**rest}", "POST", extra: [("Require:Roles:0", "user"), ("Body:MaxBytes", "2048"), ("Body:ContentTypes:0", "text/plain")]);
        Route("limited", "/limited/{**rest}", "GET", extra: [("Require:Authenticated", "true"), ("RateLimits:0", "five-per-minute")]);
        Route("leaky", "/leaky/{**rest}", "GET", extra: ("Anonymous", "true"));
        Route("leaky-kept", "/leaky-kept/{**rest}", "GET", extra: [("Anonymous", "true"), ("KeepResponseHeaders:0", "server"), ("KeepResponseHeaders:1", "X-AspNet-Version")]);
        settings["RateLimits:Policies:five-per-minute:Algorithm"] = "FixedWindow";
        settings["RateLimits:Policies:five-per-minute:PermitLimit"] = "5";
        settings["RateLimits:Policies:five-per-minute:Window"] = "00:01:00";
        settings["RateLimits:Policies:five-per-minute:PartitionBy"] = "User";

        return settings;
    }

    /// <summary>A confidential client with the given scopes, and its client_credentials token.</summary>
    public async Task<(string ClientId, string Token)> ClientTokenAsync(string scopes)
    {
        var cli = await Server.RunCliAsync(null, "clients", "add", "--name", "svc", "--scopes", scopes, "--json");
        Assert.True(cli.ExitCode == 0, cli.Error);
        var body = JsonDocument.Parse(cli.Out).RootElement;
        var id = body.GetProperty("client_id").GetString()!;
        using var response = await Client.PostAsync("connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = id,
            ["client_secret"] = body.GetProperty("client_secret").GetString()!,
            ["scope"] = scopes,
        }));
        var tokens = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (id, tokens.GetProperty("access_token").GetString()!);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Upstream is not null)
        {
            await Upstream.DisposeAsync();
        }

        Directory.Delete(SchemaDirectory, recursive: true);
    }
}
