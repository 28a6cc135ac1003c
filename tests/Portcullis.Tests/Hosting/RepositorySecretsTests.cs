using Portcullis.Tests.Infrastructure;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Portcullis.Tests.Hosting;

/// <summary>C02: no private key or signing key is committed, nor copied into the build output.</summary>
public sealed partial class RepositorySecretsTests
{
    [GeneratedRegex(@"BEGIN (EC |RSA |ENCRYPTED )?PRIVATE KEY")]
    private static partial Regex PrivateKey();

    [GeneratedRegex(@"""SigningKey""\s*:\s*""")]
    private static partial Regex SigningKey();

    [Fact]
    public async Task C02_no_tracked_file_outside_the_tests_holds_a_private_key_or_a_signing_key()
    {
        var root = Repository.Root;
        var tracked = await GitLsFilesAsync(root);
        // Sanity: the scan really sees the repository (a broken listing must not pass as "no secrets").
        Assert.Contains("src/Portcullis/Hosting/Certificates.cs", tracked);

        var findings = new List<string>();
        foreach (var relative in tracked.Where(p => !p.StartsWith("tests/", StringComparison.Ordinal)))
        {
            var path = Path.Combine(root, relative);
            if (!File.Exists(path) || IsBinary(path))
            {
                continue;
            }

            findings.AddRange(Scan(relative, await File.ReadAllTextAsync(path)));
        }

        Assert.Empty(findings);
    }

    [Fact]
    public async Task C02_the_build_output_holds_no_key_file_and_no_private_key()
    {
        var output = AppContext.BaseDirectory;
        Assert.True(File.Exists(Path.Combine(output, Path.GetFileName(typeof(Portcullis.Hosting.PortcullisHost).Assembly.Location))));

        var keyFiles = Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetExtension(f) is ".pem" or ".key" or ".pfx" or ".p12")
            .ToList();
        Assert.Empty(keyFiles);

        var findings = new List<string>();
        foreach (var path in Directory.EnumerateFiles(output, "*.json", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(output, "*.config", SearchOption.AllDirectories)))
        {
            findings.AddRange(Scan(Path.GetRelativePath(output, path), await File.ReadAllTextAsync(path)));
        }

        Assert.Empty(findings);
    }

    [Fact]
    public void C02_the_scanner_finds_what_it_looks_for()
    {
        // The patterns are proven here so an empty result above means "none", not "a broken regex".
        Assert.NotEmpty(Scan("a.pem", "-----BEGIN EC " + "PRIVATE KEY-----"));
        Assert.NotEmpty(Scan("b.pem", "-----BEGIN " + "PRIVATE KEY-----"));
        Assert.NotEmpty(Scan("c.json", "{ \"Signing" + "Key\" : \"c2VjcmV0c2VjcmV0c2VjcmV0\" }"));
        Assert.Empty(Scan("d.cs", "key.ExportPkcs8PrivateKeyPem()"));
    }

    private static IEnumerable<string> Scan(string name, string text)
    {
        if (PrivateKey().IsMatch(text))
        {
            yield return $"{name}: a PEM private key";
        }

        if (SigningKey().IsMatch(text))
        {
            yield return $"{name}: a SigningKey value";
        }
    }

    private static async Task<List<string>> GitLsFilesAsync(string root)
    {
        var start = new ProcessStartInfo("git", "ls-files -z")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var git = Process.Start(start)!;
        var output = await git.StandardOutput.ReadToEndAsync();
        var error = await git.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await git.WaitForExitAsync(timeout.Token);
        Assert.True(git.ExitCode == 0, "git ls-files failed: " + error);
        return [.. output.Split('\0', StringSplitOptions.RemoveEmptyEntries)];
    }

    private static bool IsBinary(string path)
    {
        using var stream = File.OpenRead(path);
        var buffer = new byte[8000];
        var read = stream.Read(buffer);
        return Array.IndexOf(buffer, (byte)0, 0, read) >= 0;
    }
}
