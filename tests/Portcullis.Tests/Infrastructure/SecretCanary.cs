using System.Collections.Concurrent;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

[assembly: AssemblyFixture(typeof(Portcullis.Tests.Infrastructure.SecretCanaryCheck))]

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// L02 across the whole suite: every password and token the tests use is recorded here (by the HTTP client of
/// <see cref="PortcullisServer"/> and by <see cref="PortcullisServer.RunCliAsync"/>), every server's formatted log
/// output and audit rows are scanned for them before the server goes away, and <see cref="SecretCanaryCheck"/> fails
/// the run at the end if any was found. Findings name the test and server and a SHA-256 prefix of the secret — never
/// the secret.
/// <para>
/// Cheap by design: only hashes are kept (a rolling hash of each form's last <see cref="MinLength"/> characters, and
/// the SHA-256 of the whole form), so memory is a few dozen bytes per secret and a scan is one pass over the text.
/// </para>
/// </summary>
public sealed class SecretCanary
{
    /// <summary>The registry the whole suite shares.</summary>
    public static SecretCanary Suite { get; } = new();

    /// <summary>Shorter values are not recorded: they would match ordinary text by chance.</summary>
    public const int MinLength = 10;

    private const int MaxFindings = 200;
    private const ulong Base = 1099511628211UL;
    private static readonly ulong BasePower = Power(Base, MinLength - 1);

    private readonly Lock _lock = new();
    private readonly HashSet<string> _recorded = new(StringComparer.Ordinal); // SHA-256 of each recorded raw secret
    private readonly Dictionary<ulong, List<Form>> _byTail = [];
    private readonly ConcurrentQueue<string> _findings = new();

    /// <summary>One written form of a secret: its length and hash, and which secret it is (by hash prefix).</summary>
    private sealed record Form(int Length, byte[] Sha256, string SecretId, string Kind);

    public IReadOnlyCollection<string> Findings => _findings;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _recorded.Count;
            }
        }
    }

    public static string IdOf(string secret) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))[..12];

    /// <summary>Records a secret in the forms it could be written in: as is, URL- and form-encoded, JSON-escaped, base64.</summary>
    public void Record(string? secret)
    {
        if (secret is null || secret.Length < MinLength)
        {
            return;
        }

        var id = IdOf(secret);
        lock (_lock)
        {
            if (!_recorded.Add(id))
            {
                return;
            }

            var forms = new (string Kind, string Text)[]
            {
                ("raw", secret),
                ("url-encoded", Uri.EscapeDataString(secret)),
                ("form-encoded", WebUtility.UrlEncode(secret)),
                ("json-escaped", JsonEncodedText.Encode(secret, JavaScriptEncoder.Default).Value),
                ("base64", Convert.ToBase64String(Encoding.UTF8.GetBytes(secret))),
            };
            foreach (var (kind, text) in forms.DistinctBy(f => f.Text))
            {
                var tail = Hash(text.AsSpan(text.Length - MinLength));
                if (!_byTail.TryGetValue(tail, out var list))
                {
                    _byTail[tail] = list = [];
                }

                list.Add(new Form(text.Length, Sha(text), id, kind));
            }
        }
    }

    /// <summary>Records every secret-looking string value (password, secret, token fields) of a JSON or form body.</summary>
    public void RecordFromJson(string? json)
    {
        if (string.IsNullOrWhiteSpace(json) || json.TrimStart()[0] is not ('{' or '['))
        {
            return;
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            Walk(document.RootElement, null);
        }
        catch (JsonException)
        {
            // Not JSON after all (a deliberately malformed body in a test): nothing to record.
        }
    }

    public void RecordFromForm(string? form)
    {
        foreach (var pair in (form ?? "").Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            if (parts.Length == 2 && IsSecretName(WebUtility.UrlDecode(parts[0])))
            {
                Record(WebUtility.UrlDecode(parts[1]));
            }
        }
    }

    private void Walk(JsonElement element, string? name)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Walk(property.Value, property.Name);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Walk(item, name);
                }

                break;
            case JsonValueKind.String when name is not null && IsSecretName(name):
                try
                {
                    Record(element.GetString());
                }
                catch (InvalidOperationException)
                {
                    // Not a valid UTF-16 string (a test sends a lone surrogate on purpose): it cannot be logged as sent.
                }

                break;
        }
    }

    /// <summary>password, currentPassword, client_secret, secret, access_token, refresh_token, id_token, token…</summary>
    public static bool IsSecretName(string name)
    {
        var n = name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
        return n.Contains("password", StringComparison.Ordinal) || n.Contains("secret", StringComparison.Ordinal)
            || (n.EndsWith("token", StringComparison.Ordinal) && n != "tokentype");
    }

    /// <summary>Looks for every recorded form in <paramref name="text"/>; each hit becomes a finding about <paramref name="where"/>.</summary>
    public int Scan(string where, ReadOnlySpan<char> text)
    {
        if (text.Length < MinLength)
        {
            return 0;
        }

        var found = 0;
        lock (_lock)
        {
            if (_byTail.Count == 0)
            {
                return 0;
            }

            var hash = Hash(text[..MinLength]);
            for (var end = MinLength - 1; ; end++)
            {
                if (_byTail.TryGetValue(hash, out var forms))
                {
                    foreach (var form in forms)
                    {
                        var start = end - form.Length + 1;
                        if (start >= 0 && SHA256.HashData(MemoryMarshal.AsBytes(text.Slice(start, form.Length))) is var h
                            && Equals(h, form.Sha256))
                        {
                            found++;
                            if (_findings.Count < MaxFindings)
                            {
                                _findings.Enqueue($"{where}: the secret {form.SecretId} appears ({form.Kind}) at offset {start}");
                            }
                        }
                    }
                }

                if (end + 1 >= text.Length)
                {
                    break;
                }

                unchecked
                {
                    hash = ((hash - (text[end + 1 - MinLength] * BasePower)) * Base) + text[end + 1];
                }
            }
        }

        return found;
    }

    /// <summary>Fails with every finding (test, server, secret hash prefix) when any secret was seen.</summary>
    public void ThrowIfAny()
    {
        if (!_findings.IsEmpty)
        {
            throw new InvalidOperationException(
                $"L02 canary: {_findings.Count} secret(s) the suite used were found in logs or audit rows:{Environment.NewLine}"
                + string.Join(Environment.NewLine, _findings));
        }
    }

    private static bool Equals(byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b);

    private static byte[] Sha(string text) => SHA256.HashData(MemoryMarshal.AsBytes(text.AsSpan()));

    private static ulong Hash(ReadOnlySpan<char> window)
    {
        ulong hash = 0;
        foreach (var c in window)
        {
            unchecked
            {
                hash = (hash * Base) + c;
            }
        }

        return hash;
    }

    private static ulong Power(ulong b, int e)
    {
        ulong result = 1;
        for (var i = 0; i < e; i++)
        {
            unchecked
            {
                result *= b;
            }
        }

        return result;
    }
}

/// <summary>
/// Runs once after every test class (and so every server) of the assembly has finished: fails the run if the canary
/// found a secret anywhere. The passwords the helpers use by default are recorded here up front.
/// </summary>
public sealed class SecretCanaryCheck : IDisposable
{
    public SecretCanaryCheck() => SecretCanary.Suite.Record(ClientFlows.Password);

    public void Dispose() => SecretCanary.Suite.ThrowIfAny();
}
