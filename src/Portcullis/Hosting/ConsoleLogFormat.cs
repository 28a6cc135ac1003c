using System.Text;
using Microsoft.Extensions.Logging.Console;

namespace Portcullis.Hosting;

/// <summary>What stdout's lines look like: <c>Logging:Format</c>.</summary>
public enum ConsoleLogFormat
{
    /// <summary>One JSON object per line (the framework's JSON console formatter): for machines.</summary>
    Json,

    /// <summary>One line of time, level, category, event id and message (the framework's simple console formatter): for people.</summary>
    Text,
}

/// <summary>
/// Chooses the console format: <c>Logging:Format</c> when set (<c>Json</c> or <c>Text</c>), else text on a terminal
/// and JSON when stdout is a pipe, a file or a socket (a container runtime, systemd, a log shipper). Only stdout
/// changes: the optional file (<c>Logging:File</c>) and the tests' capture stay JSON.
/// </summary>
public static class ConsoleLogFormats
{
    public const string Setting = "Logging:Format";

    /// <summary>The format for <paramref name="configuration"/>; a value other than Json or Text stops start-up, saying so.</summary>
    public static ConsoleLogFormat Select(IConfiguration configuration, bool stdoutIsTerminal) =>
        configuration[Setting] switch
        {
            null or "" => stdoutIsTerminal ? ConsoleLogFormat.Text : ConsoleLogFormat.Json,
            var v when v.Equals(nameof(ConsoleLogFormat.Json), StringComparison.OrdinalIgnoreCase) => ConsoleLogFormat.Json,
            var v when v.Equals(nameof(ConsoleLogFormat.Text), StringComparison.OrdinalIgnoreCase) => ConsoleLogFormat.Text,
            var v => throw new StartupException(
                $"{Setting} is '{v}': set it to Json or Text, or leave it unset (text on a terminal, JSON otherwise)."),
        };

    /// <summary>True when stdout is a terminal (not redirected to a pipe, file or socket).</summary>
    public static bool StdoutIsTerminal => !Console.IsOutputRedirected;

    /// <summary>The framework formatter that writes <paramref name="format"/>.</summary>
    public static string FormatterName(ConsoleLogFormat format) =>
        format == ConsoleLogFormat.Text ? ConsoleFormatterNames.Simple : ConsoleFormatterNames.Json;

    /// <summary>
    /// The text format's options: one line per entry (an exception's stack too), the local time, no colours and no
    /// scopes. Scopes stay off for the reason the JSON lines leave them out (ASP.NET Core's request scope holds the
    /// raw path); colours are off because every control character is escaped (<see cref="EscapeControls"/>).
    /// </summary>
    public static void ConfigureText(SimpleConsoleFormatterOptions text)
    {
        text.SingleLine = true;
        text.IncludeScopes = false;
        text.TimestampFormat = "HH:mm:ss.fff ";
        text.ColorBehavior = LoggerColorBehavior.Disabled;
    }

    /// <summary>
    /// The text line with every control character (CR, LF, ESC, NEL…) and the Unicode line and paragraph separators
    /// and bidirectional overrides written as <c>\uXXXX</c>, except the line's own final line break: as in the JSON
    /// lines, user-supplied text can neither split or forge a line nor send escape sequences to the operator's
    /// terminal (L05). The simple formatter escapes nothing itself.
    /// </summary>
    public static string EscapeControls(StringBuilder line)
    {
        var end = line.Length;
        var newline = Environment.NewLine;
        if (end >= newline.Length && line.ToString(end - newline.Length, newline.Length) == newline)
        {
            end -= newline.Length;
        }

        var i = 0;
        while (i < end && !MustEscape(line[i]))
        {
            i++;
        }

        if (i == end)
        {
            return line.ToString(); // the common case: nothing to escape, one copy
        }

        var escaped = new StringBuilder(line.Length + 16);
        escaped.Append(line, 0, i);
        for (; i < end; i++)
        {
            var c = line[i];
            if (MustEscape(c))
            {
                escaped.Append(@"\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.Append(line, end, line.Length - end).ToString();
    }

    private static bool MustEscape(char c) =>
        char.IsControl(c) || c is '\u2028' or '\u2029' || c is >= '\u202A' and <= '\u202E' || c is >= '\u2066' and <= '\u2069';
}
