using System.Buffers;
using System.Net;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using MimeKit;
using SmtpServer;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// A real SMTP server on loopback (the SmtpServer library, in-process, plain SMTP): every message it accepts is parsed
/// with MimeKit and handed to the test. It can start later than the Portcullis that sends to it (SMTP-down tests).
/// </summary>
public sealed partial class SmtpSink : IAsyncDisposable
{
    private readonly Channel<MimeMessage> _received = Channel.CreateUnbounded<MimeMessage>();
    private CancellationTokenSource? _stop;
    private Task? _running;

    private SmtpSink(int port) => Port = port;

    public int Port { get; }

    /// <summary>Portcullis settings that send to this server (plain SMTP on loopback, which Portcullis allows).</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["Email:Smtp:Host"] = "127.0.0.1",
        ["Email:Smtp:Port"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Email:Smtp:Security"] = "None",
        ["Email:Smtp:From"] = "Portcullis <no-reply@portcullis.test>",
        ["Email:Smtp:Timeout"] = "00:00:05",
        ["Email:Outbox:PollInterval"] = "00:00:00.200",
        ["Email:Outbox:RetryDelay"] = "00:00:00.500",
    };

    /// <summary>A sink on a free port; not listening until <see cref="Start"/>.</summary>
    public static SmtpSink Create() => new(PortcullisServer.FreePort());

    /// <summary>A sink on a free port, listening.</summary>
    public static SmtpSink Started()
    {
        var sink = Create();
        sink.Start();
        return sink;
    }

    public void Start()
    {
        var options = new SmtpServerOptionsBuilder()
            .ServerName("smtp.portcullis.test")
            .Endpoint(e => e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port)))
            .Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(_received.Writer));
        _stop = new CancellationTokenSource();
        _running = new SmtpServer.SmtpServer(options, services).StartAsync(_stop.Token);
    }

    /// <summary>The next message, or a failure after <paramref name="timeout"/> (default 20 s).</summary>
    public async Task<MimeMessage> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        try
        {
            return await _received.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No message reached the SMTP server on port {Port} in time.");
        }
    }

    /// <summary>
    /// The next message to <paramref name="to"/> with <paramref name="subject"/>; others are skipped (a shared sink
    /// also receives other tests' mail, and a new account gets its verification message first).
    /// </summary>
    public async Task<MimeMessage> NextToAsync(string to, string subject, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var mail = await NextAsync(deadline - DateTime.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.FromTicks(1));
            if (mail.Subject == subject && mail.To.Mailboxes.Any(m => m.Address.Equals(to, StringComparison.OrdinalIgnoreCase)))
            {
                return mail;
            }
        }
    }

    /// <summary>Every message that arrives within <paramref name="wait"/> (and any not yet read).</summary>
    public async Task<List<MimeMessage>> ReceivedWithinAsync(TimeSpan wait)
    {
        var received = new List<MimeMessage>();
        using var cts = new CancellationTokenSource(wait);
        try
        {
            while (true)
            {
                received.Add(await _received.Reader.ReadAsync(cts.Token));
            }
        }
        catch (OperationCanceledException)
        {
            return received;
        }
    }

    /// <summary>True if a message arrives within <paramref name="wait"/> (for "no mail was sent" assertions).</summary>
    public async Task<bool> AnyWithinAsync(TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            return await _received.Reader.WaitToReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The one link to this server's <paramref name="path"/> in a message's text, and its token.</summary>
    public static (Uri Link, string Token) LinkIn(MimeMessage message, string path)
    {
        var text = message.TextBody ?? "";
        var match = Assert.Single(LinkPattern().Matches(text), m => new Uri(m.Value).AbsolutePath == path);
        var link = new Uri(match.Value);
        var token = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(link.Query)["token"].ToString();
        Assert.False(string.IsNullOrEmpty(token), "The link carries no token: " + link);
        return (link, token);
    }

    [GeneratedRegex(@"https://\S+")]
    private static partial Regex LinkPattern();

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync();
            try
            {
                await _running!;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }

    private sealed class Store(ChannelWriter<MimeMessage> received) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            using var stream = new MemoryStream(buffer.ToArray());
            var message = await MimeMessage.LoadAsync(stream, cancellationToken);
            await received.WriteAsync(message, cancellationToken);
            return SmtpResponse.Ok;
        }
    }
}
