using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>Raw HTTP/1.1 over TLS, for requests HttpClient refuses to send (CL+TE, oversized headers).</summary>
internal static class RawHttps
{
    public sealed record Exchange(string Response, bool ClosedByServer);

    public static async Task<SslStream> ConnectAsync(PortcullisServer server, CancellationToken ct)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.BaseAddress.Port, ct);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, cert, _, _) =>
                cert is not null && cert.GetCertHashString() == server.Certificate.GetCertHashString(),
        }, ct);
        return ssl;
    }

    /// <summary>
    /// Sends <paramref name="request"/> and reads until the server closes the connection or
    /// <paramref name="wait"/> passes; <see cref="Exchange.ClosedByServer"/> tells which.
    /// </summary>
    public static async Task<Exchange> SendAsync(PortcullisServer server, string request, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var ssl = await ConnectAsync(server, timeout.Token);
        await ssl.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        await ssl.FlushAsync(timeout.Token);

        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        using var deadline = new CancellationTokenSource(wait);
        var closed = false;
        try
        {
            while (true)
            {
                var read = await ssl.ReadAsync(buffer, deadline.Token);
                if (read == 0)
                {
                    closed = true;
                    break;
                }

                received.Write(buffer, 0, read);
            }
        }
        catch (OperationCanceledException)
        {
            // Still open when the wait ran out.
        }
        catch (IOException)
        {
            closed = true; // reset by the server
        }

        return new Exchange(Encoding.ASCII.GetString(received.ToArray()), closed);
    }

    /// <summary>
    /// Sends <paramref name="request"/> in 16 KiB pieces while reading, as a client must when the server may answer
    /// (and close) before the request is all sent: writing stops once the server has answered or closed, so the
    /// answer is read instead of being lost to a reset. Returns what the server sent within <paramref name="wait"/>.
    /// </summary>
    public static async Task<Exchange> SendWhileReadingAsync(PortcullisServer server, byte[] request, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var ssl = await ConnectAsync(server, timeout.Token);
        var received = new MemoryStream();
        var answered = 0;
        using var deadline = new CancellationTokenSource(wait);
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = await ssl.ReadAsync(buffer, deadline.Token);
                    if (read == 0)
                    {
                        return true;
                    }

                    received.Write(buffer, 0, read);
                    Volatile.Write(ref answered, 1);
                }
            }
            catch (OperationCanceledException)
            {
                return false; // still open when the wait ran out
            }
            catch (IOException)
            {
                return true; // reset by the server
            }
        });

        try
        {
            for (var offset = 0; offset < request.Length && Volatile.Read(ref answered) == 0 && !reading.IsCompleted; offset += 16 * 1024)
            {
                await ssl.WriteAsync(request.AsMemory(offset, Math.Min(16 * 1024, request.Length - offset)), timeout.Token);
            }
        }
        catch (IOException)
        {
            // The server stopped reading and closed: what it answered is still read below.
        }

        var closed = await reading;
        return new Exchange(Encoding.ASCII.GetString(received.ToArray()), closed);
    }

    public static int StatusCode(string response)
    {
        var line = response.Split("\r\n", 2)[0];
        var parts = line.Split(' ');
        Assert.True(parts.Length >= 2 && parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal), $"Not an HTTP response: '{line}'");
        return int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
