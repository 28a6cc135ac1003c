using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Portcullis.Hosting;

namespace Portcullis.Cli;

/// <summary><c>doctor</c>: checks the configuration; exit 1 when any finding is high.</summary>
public static class DoctorCommand
{
    private static readonly JsonSerializerOptions JsonOutput = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static readonly Option<string?> Urls = new Option<string?>("--urls") { Description = "The addresses serve would use." }.WithUrlCheck();

    public static Command Create(CliIo io)
    {
        var command = new Command("doctor", "Check the configuration against the security bar. Exit 1 on high findings.");
        command.Options.Add(Urls);
        command.Options.Add(CliApp.Json);
        command.SetAction((parse, ct) =>
        {
            var overrides = CliApp.Overrides(parse);
            if (parse.GetValue(Urls) is { Length: > 0 } urls)
            {
                overrides["urls"] = urls;
            }

            return CliApp.WithServicesAsync(parse, io, async services =>
            {
                var findings = await Doctor.CheckAsync(services, ct);
                if (parse.GetValue(CliApp.Json))
                {
                    await io.Out.WriteLineAsync(JsonSerializer.Serialize(findings, JsonOutput));
                }
                else
                {
                    foreach (var f in findings.OrderByDescending(f => f.Severity))
                    {
                        await io.Out.WriteLineAsync($"[{f.Severity.ToString().ToUpperInvariant(),-6}] {f.Id}: {f.Problem}\n         fix: {f.Fix}");
                    }
                }

                return findings.Any(f => f.Severity == Doctor.Severity.High) ? CliApp.Failed : CliApp.Ok;
            }, overrides);
        });
        return command;
    }
}
