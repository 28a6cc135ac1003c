using System.CommandLine;
using MimeKit;
using Portcullis.Email;

namespace Portcullis.Cli;

/// <summary><c>email test --to ADDRESS</c>: one message sent now, past the outbox, and the server's answer in one line.</summary>
public static class EmailCommands
{
    private static readonly Option<string> To = new("--to") { Description = "Recipient of the test message.", Required = true };

    public static Command Create(CliIo io)
    {
        var test = new Command("test", "Send a test message now with the Email:Smtp settings and print what the server answered. Exit 1 on failure.");
        test.Options.Add(To);
        test.SetAction((parse, ct) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var to = parse.GetValue(To)!;
            if (!MailboxAddress.TryParse(to, out _) || Accounts.AccountCreator.ValidateEmail(to) is not null)
            {
                await io.Error.WriteLineAsync($"error: --to is not an e-mail address: {to}");
                return CliApp.Invalid;
            }

            try
            {
                var reply = await services.GetRequiredService<SmtpSender>().SendAsync(
                    to, "Portcullis test message", "This is a test message from Portcullis (portcullis email test). Outgoing mail works.", ct);
                await io.Out.WriteLineAsync($"sent to {to}: the server answered {OneLine(reply)}");
                return CliApp.Ok;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // MailKit's exceptions carry the server's reply (or the socket/TLS error), never the password.
                await io.Error.WriteLineAsync($"error: {OneLine(ex.Message)}");
                return CliApp.Failed;
            }
        }));

        var email = new Command("email", "Outgoing mail.");
        email.Subcommands.Add(test);
        return email;
    }

    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries)).Trim();
}
