using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Portcullis.Audit;
using Portcullis.Storage;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Monitoring;

/// <summary>
/// The suite-wide L02 canary (<see cref="SecretCanary"/>) must be able to fail: these tests plant secrets in a
/// server that reports to a private canary (so the suite's own canary stays clean) and check what it reports.
/// </summary>
public sealed class SecretCanaryTests
{
    [Fact]
    public async Task L02_canary_finds_a_planted_password_in_the_logs_and_a_planted_token_in_the_audit_and_names_the_test()
    {
        var canary = new SecretCanary();
        string token;
        await using (var server = await PortcullisServer.StartAsync(canary: canary))
        {
            using var http = server.CreateClient();
            var (_, _, tokens) = await http.NewUserAsync("planted");
            token = tokens.AccessToken;
            Assert.True(canary.Count >= 3, "the client recorded the password, access and refresh tokens");

            // The real pipeline leaks nothing by itself…
            Assert.Equal(0, canary.Scan("check", server.Logs.Text));

            // …so plant: a password in a log line (through the real logger and formatter), a token in an audit row.
#pragma warning disable CA1848, CA2254 // deliberately the unsafe way
            server.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Planted").LogWarning("oops " + ClientFlows.Password);
#pragma warning restore CA1848, CA2254
            await using var scope = server.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PortcullisDb>();
            db.AuditEvents.Add(new AuditEvent
            {
                Timestamp = DateTimeOffset.UtcNow, EventId = 1, Name = "planted", Outcome = "x", Actor = "x", Details = $"{{\"t\":\"{token}\"}}",
            });
            await db.SaveChangesAsync();
        }

        var findings = canary.Findings.ToList();
        Assert.Contains(findings, f => f.Contains("(logs)", StringComparison.Ordinal) && f.Contains(SecretCanary.IdOf(ClientFlows.Password), StringComparison.Ordinal));
        Assert.Contains(findings, f => f.Contains("(audit)", StringComparison.Ordinal) && f.Contains(SecretCanary.IdOf(token), StringComparison.Ordinal));
        Assert.All(findings, f => Assert.Contains(nameof(L02_canary_finds_a_planted_password_in_the_logs_and_a_planted_token_in_the_audit_and_names_the_test), f, StringComparison.Ordinal));

        var failure = Assert.Throws<InvalidOperationException>(canary.ThrowIfAny);
        Assert.DoesNotContain(ClientFlows.Password, failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(token, failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("raw", "{0}")]
    [InlineData("url-encoded", "password=a%20long%20and%20unusual%20passphrase%207731&x=1")]
    [InlineData("form-encoded", "password=a+long+and+unusual+passphrase+7731")]
    [InlineData("base64", "Basic YSBsb25nIGFuZCB1bnVzdWFsIHBhc3NwaHJhc2UgNzczMQ==")]
    public void L02_canary_recognises_a_secret_in_each_written_form(string kind, string text)
    {
        var canary = new SecretCanary();
        canary.Record(ClientFlows.Password);
        Assert.Equal(1, canary.Scan("t", string.Format(System.Globalization.CultureInfo.InvariantCulture, text, ClientFlows.Password)));
        Assert.Contains($"({kind})", Assert.Single(canary.Findings), StringComparison.Ordinal);
        Assert.Equal(0, new SecretCanary().Scan("t", ClientFlows.Password)); // nothing recorded, nothing found
    }

    [Fact]
    public void L02_canary_finds_secrets_at_the_edges_of_the_text_and_ignores_near_misses()
    {
        var canary = new SecretCanary();
        const string Secret = "0123456789abcdef";
        canary.Record(Secret);
        Assert.Equal(1, canary.Scan("t", Secret));
        Assert.Equal(2, canary.Scan("t", Secret + "|" + Secret));
        Assert.Equal(0, canary.Scan("t", Secret.AsSpan(1)));
        Assert.Equal(0, canary.Scan("t", "x123456789abcdef"));
        canary.Record("short"); // below MinLength: not tracked
        Assert.Equal(0, canary.Scan("t", "a short text"));
    }
}
