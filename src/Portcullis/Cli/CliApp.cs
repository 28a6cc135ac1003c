using System.CommandLine;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Cli;

/// <summary>
/// The one executable: <c>serve</c> and the operator commands share configuration and storage.
/// Exit codes: 0 success, 1 failure, 2 usage error, 3 not found, 4 conflict or invalid input, 5 configuration error
/// (a setting of the wrong type or refused by its validator).
/// <para>
/// Owns the command line: <c>serve</c>, <c>migrate</c>, <c>doctor</c>, and the operator commands <c>users</c>,
/// <c>roles</c>, <c>clients</c>, <c>keys</c>, <c>audit</c> and <c>email</c>.
/// </para>
/// <para>
/// Uses Hosting (the same composition root as the server, the configuration check), Storage (the DbContext,
/// migrations), Admin (the administration services the admin API uses), Accounts (creating accounts), Audit
/// (verify, prune, export, tail), Tokens (the key ring and the key-encryption key) and Access (role names).
/// </para>
/// </summary>
public static class CliApp
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
    public const int NotFound = 3;
    public const int Invalid = 4;
    public const int Configuration = 5;

    internal static readonly Option<string?> DataDir = new("--data-dir")
    {
        Description = "Directory for the database and other state (Storage:DataDirectory). Default ./data.",
        Recursive = true,
    };

    internal static readonly Option<bool> Verbose = new("--verbose")
    {
        Description = "On an error, print the whole exception (stack trace included).",
        Recursive = true,
    };

    internal static readonly Option<bool> Json = new("--json") { Description = "Print JSON for scripts." };

    internal static readonly System.Text.Json.JsonSerializerOptions JsonOutput = new(System.Text.Json.JsonSerializerDefaults.Web);

    /// <param name="settings">Configuration for an embedding host (the tests' database), below command-line options.</param>
    public static async Task<int> RunAsync(
        string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var io = new CliIo(stdin, stdout, stderr) { Settings = settings };
        var root = new RootCommand("Portcullis: identity provider, authorization authority and API gateway.");
        root.Options.Add(DataDir);
        root.Options.Add(Verbose);
        root.Subcommands.Add(ServeCommand.Create(io));
        root.Subcommands.Add(AccountCommands.CreateAdmin(io));
        root.Subcommands.Add(AccountCommands.CreateUsers(io));
        root.Subcommands.Add(ClientCommands.Create(io));
        root.Subcommands.Add(RoleCommands.Create(io));
        root.Subcommands.Add(KeyCommands.Create(io));
        root.Subcommands.Add(MigrateCommand.Create(io));
        root.Subcommands.Add(DoctorCommand.Create(io));
        root.Subcommands.Add(AuditCommands.Create(io));
        root.Subcommands.Add(EmailCommands.Create(io));
        var parse = root.Parse(args);
        try
        {
            if (parse.Action is System.CommandLine.Invocation.ParseErrorAction usage)
            {
                // System.CommandLine reports parse errors itself (with its typo corrections) but exits 1 and then prints
                // the whole help screen; the README promises 2, and the mistake should stay the last thing on screen.
                usage.ShowHelp = false;
                await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
                await stderr.WriteLineAsync($"Run '{CommandPath(parse.CommandResult)} --help' for usage.");
                return Usage;
            }

            // No default exception handler: it prints every stack trace (CliErrors prints one line unless --verbose).
            return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return await CliErrors.ReportUnexpectedAsync(io, parse, ex);
        }
    }

    private static string CommandPath(System.CommandLine.Parsing.CommandResult? result)
    {
        var names = new List<string>();
        for (var r = result; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, r.Parent is null ? "portcullis" : r.Command.Name);
        }

        return names.Count == 0 ? "portcullis" : string.Join(' ', names);
    }

    internal static Dictionary<string, string?> Overrides(ParseResult parse)
    {
        var overrides = new Dictionary<string, string?>();
        if (parse.GetValue(DataDir) is { Length: > 0 } dir)
        {
            overrides[$"{StorageOptions.Section}:{nameof(StorageOptions.DataDirectory)}"] = dir;
        }

        return overrides;
    }

    /// <summary>Runs an offline operator command against the configured database.</summary>
    internal static async Task<int> WithServicesAsync(
        ParseResult parse, CliIo io, Func<IServiceProvider, Task<int>> action, Dictionary<string, string?>? overrides = null)
    {
        try
        {
            var builder = PortcullisHost.CreateBuilder(io.WithSettings(overrides ?? Overrides(parse)));
            await using var app = builder.Build();
            await PortcullisHost.InitializeAsync(app.Services);
            await using var scope = app.Services.CreateAsyncScope();
            return await action(scope.ServiceProvider);
        }
        catch (Exception ex) when (CliErrors.Describe(ex) is { } error)
        {
            return await CliErrors.ReportAsync(io, parse, "error: ", ex, error);
        }
    }
}

/// <summary>Standard streams, swappable in tests.</summary>
public sealed record CliIo(TextReader In, TextWriter Out, TextWriter Error)
{
    /// <summary>Configuration from an embedding host; command-line overrides win over it.</summary>
    public IReadOnlyDictionary<string, string?>? Settings { get; init; }

    public Dictionary<string, string?> WithSettings(Dictionary<string, string?> overrides)
    {
        var merged = new Dictionary<string, string?>(Settings ?? new Dictionary<string, string?>());
        foreach (var (key, value) in overrides)
        {
            merged[key] = value;
        }

        return merged;
    }

    /// <summary>Reads a secret from standard input (one line), never from argv or the environment.</summary>
    public async Task<string?> ReadSecretAsync(bool fromStdin, string prompt)
    {
        if (!fromStdin && !Console.IsInputRedirected && ReferenceEquals(In, Console.In))
        {
            await Error.WriteAsync(prompt);
            var chars = new List<char>();
            while (true)
            {
                var key = Console.ReadKey(intercept: true);
                if (key.Key == ConsoleKey.Enter)
                {
                    break;
                }

                if (key.Key == ConsoleKey.Backspace)
                {
                    if (chars.Count > 0)
                    {
                        chars.RemoveAt(chars.Count - 1);
                    }

                    continue;
                }

                chars.Add(key.KeyChar);
            }

            await Error.WriteLineAsync();
            return new string([.. chars]);
        }

        var line = await In.ReadLineAsync();
        return line?.TrimEnd('\r');
    }
}
