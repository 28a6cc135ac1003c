using System.CommandLine;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.Cli;

/// <summary>
/// <c>keys list|rotate</c>: token signing keys (running servers pick a rotation up within Tokens:SyncInterval);
/// <c>keys new-kek|rotate-kek</c>: the key-encryption key that protects them at rest.
/// </summary>
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
        keys.Subcommands.Add(CreateNewKek(io));
        keys.Subcommands.Add(CreateRotateKek(io));
        return keys;
    }

    private static readonly Option<string?> Out = new("--out") { Description = "Where to write the new key-encryption key (PEM, created owner-only; never over an existing file)." };

    /// <summary><c>keys new-kek --out FILE</c>: a key-encryption key for configuration (PostgreSQL, several instances).</summary>
    private static Command CreateNewKek(CliIo io)
    {
        var command = new Command("new-kek", "Write a new key-encryption key to a file, for KeyEncryption:CertificatePath (needed with PostgreSQL).");
        command.Options.Add(Out);
        command.SetAction(async (parse, _) =>
        {
            if (parse.GetValue(Out) is not { Length: > 0 } path)
            {
                await io.Error.WriteLineAsync("error: --out FILE is required.");
                return CliApp.Usage;
            }

            if (await WriteNewAsync(io, path) is not { } created)
            {
                return CliApp.Invalid;
            }

            await io.Out.WriteLineAsync($"Key-encryption key {created.Thumbprint} written to {Path.GetFullPath(path)}. Set KeyEncryption:CertificatePath to it on every instance.");
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>
    /// <c>keys rotate-kek [--out FILE]</c>: re-encrypts the Data Protection key ring under a new key-encryption key in
    /// one transaction. The default file is replaced in place; a key from configuration cannot be, so the new one goes
    /// to <c>--out</c> and the operator points the configuration at it.
    /// </summary>
    private static Command CreateRotateKek(CliIo io)
    {
        var command = new Command("rotate-kek", "Re-encrypt the key ring with a new key-encryption key; restart every instance afterwards.");
        command.Options.Add(Out);
        command.SetAction((parse, _) => CliApp.WithServicesAsync(parse, io, async services =>
        {
            var current = services.GetRequiredService<KeyEncryption>().Current!;
            var inPlace = current.Origin == KeyEncryption.Origin.DataDirectoryFile && parse.GetValue(Out) is null;
            if (!inPlace && parse.GetValue(Out) is not { Length: > 0 })
            {
                await io.Error.WriteLineAsync($"error: the key-encryption key comes from {current.Describe()}, which this command cannot replace: give --out FILE for the new key.");
                return CliApp.Usage;
            }

            var target = inPlace ? current.File! + ".new" : parse.GetValue(Out)!;
            if (await WriteNewAsync(io, target) is not { } next)
            {
                return CliApp.Invalid;
            }

            var db = services.GetRequiredService<PortcullisDb>();
            await using (var transaction = await db.Database.BeginTransactionAsync())
            {
                var count = await KeyEncryption.ReencryptAsync(services, db, next, CancellationToken.None);
                services.GetRequiredService<Audit.AuditLog>().Record(Audit.AuditEvents.KeyEncryptionKeyRotated, Audit.AuditOutcomes.Success, $"kek:{next.Thumbprint}", new { keys = count });
                await db.SaveChangesAsync();
                await transaction.CommitAsync();
            }

            if (inPlace)
            {
                // The ring is committed under the new key before the file changes: if this process dies in between,
                // the new key is in FILE.new and moving it over FILE finishes the rotation.
                File.Move(target, current.File!, overwrite: true);
                target = current.File!;
            }

            await io.Out.WriteLineAsync(inPlace
                ? $"The key ring is encrypted with a new key-encryption key ({next.Thumbprint}), now in {target}. Restart every running instance."
                : $"The key ring is encrypted with a new key-encryption key ({next.Thumbprint}), written to {Path.GetFullPath(target)}. Point KeyEncryption:CertificatePath (or the credential) at it and restart every instance; the old key opens nothing any more.");
            return CliApp.Ok;
        }));
        return command;
    }

    private static async Task<System.Security.Cryptography.X509Certificates.X509Certificate2?> WriteNewAsync(CliIo io, string path)
    {
        try
        {
            return KeyEncryption.Write(path, KeyEncryption.Create());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await io.Error.WriteLineAsync($"error: cannot write {path}: {ex.Message}");
            return null;
        }
    }
}
