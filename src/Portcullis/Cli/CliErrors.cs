using System.CommandLine;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.Cli;

/// <summary>
/// Mistakes an operator can fix, as one or a few lines naming the setting, the problem and the fix, with the exit
/// code the README documents. The stack trace only with <c>--verbose</c>: for these it says nothing an operator needs.
/// </summary>
internal static partial class CliErrors
{
    /// <summary>What to print and the exit code.</summary>
    public sealed record Error(int ExitCode, string Message);

    /// <summary>The operator's mistake behind <paramref name="exception"/>, or null for anything else (a bug).</summary>
    public static Error? Describe(Exception exception) => exception switch
    {
        ConfigurationException e => new(CliApp.Configuration, e.Message),
        OptionsValidationException e => new(CliApp.Configuration, string.Join(Environment.NewLine, e.Failures)),
        // The binder's own refusal, for a value ConfigurationCheck did not see (a section read outside the options
        // classes). Its message names the key and the type; string settings, the secret ones, never fail to convert.
        InvalidOperationException { InnerException: FormatException or ArgumentException or OverflowException or NotSupportedException } e
            when e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
            => new(CliApp.Configuration, e.Message),
        StartupException e => new(CliApp.Failed, e.Message),
        IOException { InnerException: AddressInUseException } e => new(CliApp.Failed,
            $"cannot listen on {BoundAddress(e.Message)}: the address is already in use (another Portcullis?). Stop it or pick another port with --urls."),
        // Kestrel's other bind failures (a port below 1024 without the capability, an address not on this host).
        IOException { InnerException: System.Net.Sockets.SocketException socket } e when e.Message.StartsWith("Failed to bind", StringComparison.Ordinal)
            => new(CliApp.Failed, $"cannot listen on {BoundAddress(e.Message)}: {socket.Message}. Pick another address with --urls."),
        _ => null,
    };

    /// <summary>Prints the error (the whole exception with --verbose) and returns its exit code.</summary>
    public static async Task<int> ReportAsync(CliIo io, ParseResult parse, string prefix, Exception exception, Error error)
    {
        foreach (var line in error.Message.Split(Environment.NewLine))
        {
            await io.Error.WriteLineAsync(prefix + line);
        }

        if (parse.GetValue(CliApp.Verbose))
        {
            await io.Error.WriteLineAsync(exception.ToString());
        }

        return error.ExitCode;
    }

    /// <summary>The last resort for an exception no command expected: its message, and the trace only with --verbose.</summary>
    public static async Task<int> ReportUnexpectedAsync(CliIo io, ParseResult parse, Exception exception)
    {
        if (Describe(exception) is { } error)
        {
            return await ReportAsync(io, parse, "error: ", exception, error);
        }

        if (parse.GetValue(CliApp.Verbose))
        {
            await io.Error.WriteLineAsync("error: " + exception);
        }
        else
        {
            await io.Error.WriteLineAsync($"error: {exception.GetType().Name}: {exception.Message}");
            await io.Error.WriteLineAsync("       (run again with --verbose for the details)");
        }

        return CliApp.Failed;
    }

    /// <summary>Refuses <c>--urls</c> values Kestrel cannot listen on, as a usage error. Once per option: options are static.</summary>
    public static Option<string?> WithUrlCheck(this Option<string?> option)
    {
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { Length: > 0 } urls)
            {
                foreach (var problem in ConfigurationCheck.UrlProblems(urls))
                {
                    result.AddError($"{option.Name}: {problem}");
                }
            }
        });
        return option;
    }

    private static string BoundAddress(string message) =>
        BindFailure().Match(message) is { Success: true } match ? match.Groups["address"].Value : "the configured address";

    [GeneratedRegex(@"^Failed to bind to address (?<address>\S+?):? ")]
    private static partial Regex BindFailure();
}
