using System.CommandLine;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.Cli;

/// <summary><c>keys list|rotate</c>: token signing keys. Running servers pick a rotation up within Tokens:SyncInterval.</summary>
public static class KeyCommands
{
    public static Command Create(CliIo io)
    {
        var keys = new Command("keys", "Token signing keys.");
        var list = new Command("list", "List signing keys (never their private parts).");
        list.Options.Add(CliApp.Json);
        list.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var db = services.GetRequiredService<PortcullisDb>();
            var rows = await db.SigningKeys.AsNoTracking().Where(k => k.Use == KeyRing.SigningUse)
                .Select(k => new { kid = k.KeyId, algorithm = k.Algorithm, created = k.CreatedAt, retired = k.RetiredAt })
                .ToListAsync();
            rows = [.. rows.OrderByDescending(k => k.created)];
            if (parse.GetValue(CliApp.Json))
            {
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(rows));
            }
            else
            {
                foreach (var row in rows)
                {
                    await io.Out.WriteLineAsync($"{row.kid}  {row.algorithm}  created {row.created:u}  {(row.retired is { } r ? $"retired {r:u}" : "active")}");
                }
            }

            return CliApp.Ok;
        }));

        var rotate = new Command("rotate", "Add a new signing key; the previous one stays published until its tokens expire.");
        rotate.Options.Add(CliApp.Json);
        rotate.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var key = await services.GetRequiredService<KeyRing>().RotateAsync(services.GetRequiredService<PortcullisDb>(), services.GetRequiredService<Audit.AuditLog>(), CancellationToken.None);
            await io.Out.WriteLineAsync(parse.GetValue(CliApp.Json)
                ? JsonSerializer.Serialize(new { kid = key.KeyId })
                : $"New signing key {key.KeyId} is active.");
            return CliApp.Ok;
        }));
        keys.Subcommands.Add(list);
        keys.Subcommands.Add(rotate);
        return keys;
    }
}
