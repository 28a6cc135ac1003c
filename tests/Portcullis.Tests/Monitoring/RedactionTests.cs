using System.Net;
using System.Reflection;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Compliance.Redaction;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portcullis.Hosting;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

/// <summary>
/// Classified values go through Microsoft.Extensions.Compliance.Redaction: what the real logging pipeline writes
/// (captured after the JSON console formatter) and what the audit stores is the redactor's output, never the value.
/// </summary>
public sealed partial class RedactionTests
{
    [Fact]
    public async Task L02_a_name_typed_into_the_login_form_is_logged_and_audited_only_as_its_keyed_hash()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();
        var typed = "MyPassphrase" + Guid.NewGuid().ToString("N"); // what a user types into the wrong field
        using (var failed = await http.PasswordGrantAsync(typed, "x-wrong-password-x-wrong"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        }

        var personal = server.Services.GetRequiredService<IRedactorProvider>().GetRedactor(PortcullisTaxonomy.Personal);
        var hashed = personal.Redact(typed);
        Assert.DoesNotContain(typed, hashed, StringComparison.Ordinal);
        Assert.Equal(hashed, personal.Redact(typed)); // stable: the same name correlates

        var line = Assert.Single(Lines(server.Logs.Text), l => l.GetProperty("EventId").GetInt32() == 2001);
        Assert.Equal($"Password login failed for {hashed}.", line.GetProperty("Message").GetString());
        Assert.Equal(hashed, line.GetProperty("State").GetProperty("Username").GetString());
        Assert.DoesNotContain(typed, server.Logs.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(typed[..12], server.Logs.Text, StringComparison.Ordinal);

        await using var scope = server.Services.CreateAsyncScope();
        var audit = await scope.ServiceProvider.GetRequiredService<PortcullisDb>().AuditEvents.AsNoTracking()
            .SingleAsync(e => e.Name == "authn_login_fail");
        Assert.Equal("name:" + hashed, audit.Target);
    }

    [Fact]
    public async Task The_personal_hash_key_lives_in_the_data_directory_owner_only_and_survives_a_restart()
    {
        var server = await PortcullisServer.StartAsync();
        var path = Path.Combine(server.DataDirectory, Redaction.KeyFile);
        var before = server.Services.GetRequiredService<IRedactorProvider>().GetRedactor(PortcullisTaxonomy.Personal).Redact("alice@example.com");
        await server.StopKeepingDataAsync();
        Assert.True(File.Exists(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        await using var again = await PortcullisServer.StartAsync(dataDirectory: server.DataDirectory);
        Assert.Equal(before, again.Services.GetRequiredService<IRedactorProvider>().GetRedactor(PortcullisTaxonomy.Personal).Redact("alice@example.com"));
    }

    [Fact]
    public async Task Each_classification_has_its_redactor_secret_erased_personal_hashed_public_kept()
    {
        await using var server = await PortcullisServer.StartAsync();
        var logger = server.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Portcullis.Tests.Redaction");
        const string Secret = "a-client-secret-that-must-not-show";
        const string Name = "carol@example.com";
        LogClassified(logger, Secret, Name, "users:read");

        var line = Assert.Single(Lines(server.Logs.Text), l => l.GetProperty("EventId").GetInt32() == 9990);
        var state = line.GetProperty("State");
        Assert.Equal("", state.GetProperty("Secret").GetString());
        Assert.Equal(server.Services.GetRequiredService<IRedactorProvider>().GetRedactor(PortcullisTaxonomy.Personal).Redact(Name), state.GetProperty("Name").GetString());
        Assert.Equal("users:read", state.GetProperty("Permission").GetString());
        Assert.DoesNotContain(Secret, server.Logs.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(Name, server.Logs.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Request_and_response_records_classify_their_passwords_as_secret_and_names_as_personal()
    {
        var records = typeof(PortcullisHost).Assembly.GetTypes()
            .Where(t => t.Namespace == "Portcullis.Accounts" && t.IsNested && t.Name is "Request" or "Response" or "AccountResponse")
            .ToList();
        Assert.NotEmpty(records);
        foreach (var property in records.SelectMany(t => t.GetProperties()))
        {
            var where = $"{property.DeclaringType!.FullName}.{property.Name}";
            if (property.Name.Contains("Password", StringComparison.Ordinal) || property.Name.Contains("Secret", StringComparison.Ordinal))
            {
                Assert.True(property.GetCustomAttribute<SecretDataAttribute>() is not null, $"{where} is not classified as secret");
            }

            if (property.Name is "Username" or "Email")
            {
                Assert.True(property.GetCustomAttribute<PiiDataAttribute>() is not null, $"{where} is not classified as personal");
            }
        }
    }

    internal static IEnumerable<JsonElement> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone());

    [LoggerMessage(EventId = 9990, Level = LogLevel.Warning, Message = "classified {Secret} {Name} {Permission}")]
    private static partial void LogClassified(ILogger logger, [SecretData] string secret, [PiiData] string name, [PublicData] string permission);
}
