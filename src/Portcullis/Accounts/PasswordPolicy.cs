using System.IO.Compression;
using System.Text;
using Microsoft.Extensions.Options;
using Portcullis.Hosting;

namespace Portcullis.Accounts;

/// <summary>
/// Password rules after NIST SP 800-63B-4 §3.1.1.2: length in code points (min 15 by default, max 1024), no
/// composition rules, no truncation or trimming, and a blocklist of common and breached passwords plus context
/// words. Messages name the rule, never the password.
/// </summary>
public sealed class PasswordPolicy(IOptions<AccountOptions> options)
{
    // Loaded on first use (the first password set, not at start-up), then kept as a packed sorted list: a fraction
    // of the memory a HashSet of the same strings takes (BENCHMARKS.md).
    private static readonly Lazy<SortedBlocklist> Blocklist = new(LoadBlocklist);

    private static readonly string[] ContextWords = ["portcullis"];

    /// <summary>Length in Unicode code points (a lone surrogate counts as one, and is refused elsewhere).</summary>
    public static int CodePoints(string s)
    {
        var count = 0;
        for (var i = 0; i < s.Length; i++, count++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
        }

        return count;
    }

    /// <summary>True when the password is too long to hash at all (checked before any work, also at login).</summary>
    public bool IsOverLong(string password) =>
        password.Length > options.Value.MaxPasswordLength * 2 || CodePoints(password) > options.Value.MaxPasswordLength;

    /// <summary>Returns the broken rule, or null.</summary>
    public string? Validate(string? password, string? username)
    {
        var o = options.Value;
        if (string.IsNullOrEmpty(password))
        {
            return "A password is required.";
        }

        if (IsOverLong(password))
        {
            return $"A password has at most {o.MaxPasswordLength} characters.";
        }

        if (CodePoints(password) < o.MinPasswordLength)
        {
            return $"A password has at least {o.MinPasswordLength} characters.";
        }

        for (var i = 0; i < password.Length; i++)
        {
            if (char.IsSurrogate(password[i]) && !(char.IsHighSurrogate(password[i]) && i + 1 < password.Length && char.IsLowSurrogate(password[++i])))
            {
                return "The password contains invalid characters.";
            }
        }

        var folded = password.Normalize(NormalizationForm.FormKC).ToLowerInvariant();
        // "password123456789" and "Password1234567!" are a listed word with a predictable tail (NIST's "expected
        // values"): the list only holds the bare word, so the word is looked up without the tail too.
        if (Blocklist.Value.Contains(folded) || Blocklist.Value.Contains(WithoutPredictableTail(folded)))
        {
            return "This password is too common or has appeared in a data breach; choose another.";
        }

        if (!string.IsNullOrEmpty(username) && folded.Contains(UsernameRules.Key(username), StringComparison.Ordinal))
        {
            return "The password may not contain the username.";
        }

        foreach (var word in ContextWords)
        {
            if (folded.Contains(word, StringComparison.Ordinal))
            {
                return "The password may not contain the product name.";
            }
        }

        return null;
    }

    /// <summary>The password without trailing ASCII digits, punctuation, symbols and spaces.</summary>
    private static string WithoutPredictableTail(string folded)
    {
        var end = folded.Length;
        while (end > 0 && char.IsAscii(folded[end - 1]) && !char.IsAsciiLetter(folded[end - 1]))
        {
            end--;
        }

        return folded[..end];
    }

    internal static int BlocklistCount => Blocklist.Value.Count;

    private static SortedBlocklist LoadBlocklist()
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream("Portcullis.Accounts.common-passwords.txt.gz")
            ?? throw new InvalidOperationException("The password blocklist resource is missing from the build.");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var text = new MemoryStream();
        gzip.CopyTo(text);
        return SortedBlocklist.FromLines(text.GetBuffer().AsSpan(0, (int)text.Length));
    }

    /// <summary>
    /// An exact, ordinal set of UTF-8 lines packed into one array and searched by binary search. UTF-8 byte order is
    /// code-point order, so two strings are equal exactly when their UTF-8 bytes are.
    /// </summary>
    internal sealed class SortedBlocklist
    {
        private readonly byte[] _bytes;
        private readonly int[] _starts; // entry i is _bytes[_starts[i].._starts[i + 1]]

        private SortedBlocklist(byte[] bytes, int[] starts)
        {
            _bytes = bytes;
            _starts = starts;
        }

        public int Count => _starts.Length - 1;

        private ReadOnlySpan<byte> Entry(int i) => _bytes.AsSpan(_starts[i], _starts[i + 1] - _starts[i]);

        public static SortedBlocklist FromLines(ReadOnlySpan<byte> text)
        {
            var lines = new List<Range>();
            var position = 0;
            while (position < text.Length)
            {
                var end = text[position..].IndexOf((byte)'\n');
                var line = end < 0 ? position..text.Length : position..(position + end);
                position = end < 0 ? text.Length : position + end + 1;
                var (offset, length) = line.GetOffsetAndLength(text.Length);
                if (length > 0 && text[offset + length - 1] == (byte)'\r')
                {
                    line = offset..(offset + length - 1);
                }

                if (line.GetOffsetAndLength(text.Length).Length > 0)
                {
                    lines.Add(line);
                }
            }

            var source = text.ToArray();
            lines.Sort((a, b) => source.AsSpan(a).SequenceCompareTo(source.AsSpan(b))); // the file is sorted; this only makes sure
            var bytes = new byte[lines.Sum(l => l.GetOffsetAndLength(source.Length).Length)];
            var starts = new int[lines.Count + 1];
            var at = 0;
            for (var i = 0; i < lines.Count; i++)
            {
                starts[i] = at;
                var entry = source.AsSpan(lines[i]);
                entry.CopyTo(bytes.AsSpan(at));
                at += entry.Length;
            }

            starts[lines.Count] = at;
            return new SortedBlocklist(bytes, starts);
        }

        public bool Contains(string value)
        {
            var max = Encoding.UTF8.GetMaxByteCount(value.Length);
            byte[]? rented = null;
            var buffer = max <= 512 ? stackalloc byte[512] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max));
            try
            {
                var key = buffer[..Encoding.UTF8.GetBytes(value, buffer)];
                int low = 0, high = Count - 1;
                while (low <= high)
                {
                    var middle = low + ((high - low) >> 1);
                    var order = Entry(middle).SequenceCompareTo(key);
                    if (order == 0)
                    {
                        return true;
                    }

                    if (order < 0)
                    {
                        low = middle + 1;
                    }
                    else
                    {
                        high = middle - 1;
                    }
                }

                return false;
            }
            finally
            {
                if (rented is not null)
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(rented);
                }
            }
        }
    }
}
