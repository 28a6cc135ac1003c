using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Options;
using Portcullis.Cli;
using Portcullis.Email;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Email;

/// <summary>
/// Mail settings: plain SMTP only to loopback, every failure reported at once; without mail, reset says it is
/// unavailable and doctor says why; <c>portcullis email test</c> sends directly and answers in one line with its exit code.
/// </summary>
public sealed class EmailConfigurationTests
{
    [Fact]
    public void Plain_SMTP_to_a_host_that_is_not_loopback_is_refused_with_what_to_set()
    {
        var options = new EmailOptions { Smtp = { Host = "smtp.example.com", Security = SmtpSecurity.None, From = "no-reply@example.com", Username = "mailer" } };

        var result = new EmailOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("Email:Smtp:Security=None is allowed only for a server on loopback", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Email:Smtp:Username is set without a password", StringComparison.Ordinal));
        foreach (var loopback in new[] { "127.0.0.1", "localhost", "::1", "[::1]" })
        {
            options = new EmailOptions { Smtp = { Host = loopback, Security = SmtpSecurity.None, From = "Portcullis <no-reply@example.com>" } };
            Assert.True(new EmailOptionsValidator().Validate(null, options).Succeeded, loopback);
        }
    }

    [Fact]
    public async Task Start_up_stops_on_plain_SMTP_to_a_remote_host()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => PortcullisServer.StartAsync(new Dictionary<string, string?>
        {
            ["Email:Smtp:Host"] = "smtp.example.com",
            ["Email:Smtp:Security"] = "None",
            ["Email:Smtp:From"] = "no-reply@example.com",
        }));
        Assert.Contains("Email:Smtp:Security=None", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_mail_reset_answers_503_saying_why_and_doctor_reports_it()
    {
        await using var server = await PortcullisServer.StartAsync();
        using var http = server.CreateClient();

        using var response = await http.PostAsJsonAsync("api/accounts/password-reset", new { email = "someone@example.com" });

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("has no outgoing mail configured", problem.GetProperty("title").GetString(), StringComparison.Ordinal);
        using var page = await http.GetAsync("forgot-password");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, page.StatusCode);
        Assert.Contains("not available", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var signIn = await http.GetAsync("signin");
        Assert.DoesNotContain("forgot-password", await signIn.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var doctor = await server.RunCliAsync(null, "doctor");
        Assert.Contains("email-not-configured", doctor.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Email_test_sends_a_message_and_prints_the_server_answer_in_one_line_exit_0()
    {
        await using var smtp = SmtpSink.Started();
        await using var server = await PortcullisServer.StartAsync(smtp.Settings);

        var result = await server.RunCommandAsync(WithMail(smtp), null, "email", "test", "--to", "ops@example.com");

        Assert.True(result.ExitCode == CliApp.Ok, result.Error);
        var line = Assert.Single(result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sent to ops@example.com: the server answered ", line, StringComparison.Ordinal);
        var mail = await smtp.NextAsync();
        Assert.Equal("ops@example.com", mail.To.Mailboxes.Single().Address);
        Assert.Equal("no-reply@portcullis.test", mail.From.Mailboxes.Single().Address);
    }

    [Fact]
    public async Task Email_test_with_the_server_down_or_mail_unset_fails_in_one_line_exit_1()
    {
        await using var smtp = SmtpSink.Create(); // nothing listens on its port
        await using var server = await PortcullisServer.StartAsync();

        var down = await server.RunCommandAsync(WithMail(smtp), null, "email", "test", "--to", "ops@example.com");
        Assert.Equal(CliApp.Failed, down.ExitCode);
        Assert.StartsWith("error: ", Assert.Single(down.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);

        var unset = await server.RunCliAsync(null, "email", "test", "--to", "ops@example.com");
        Assert.Equal(CliApp.Failed, unset.ExitCode);
        Assert.Equal("error: Outgoing mail is not configured (Email:Smtp:Host).", unset.Error.Trim());

        var invalid = await server.RunCommandAsync(WithMail(smtp), null, "email", "test", "--to", "not an address");
        Assert.Equal(CliApp.Invalid, invalid.ExitCode);
    }

    /// <summary>The CLI with <paramref name="smtp"/>'s mail settings added to the embedding host's configuration.</summary>
    private static PortcullisServer.CommandLine WithMail(SmtpSink smtp) => (args, stdin, stdout, stderr, settings) =>
    {
        var merged = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>());
        foreach (var (key, value) in smtp.Settings)
        {
            merged[key] = value;
        }

        return CliApp.RunAsync(args, stdin, stdout, stderr, merged);
    };
}
