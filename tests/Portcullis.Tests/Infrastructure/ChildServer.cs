using System.Diagnostics;
using System.Text;
using Portcullis.Cli;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// The real executable (<c>portcullis serve</c>) as a child process, for tests about what the process itself does with
/// its standard output: what it prints, and how it copes when nobody reads it or its reader goes away. Always SQLite in
/// a temporary data directory (what is tested happens apart from storage); the limits are those of
/// <see cref="PortcullisServer.TestSettings"/>.
/// </summary>
public sealed class ChildServer : IAsyncDisposable
{
    /// <summary>What happens to the child's stdout.</summary>
    public enum Output
    {
        /// <summary>Read line by line into <see cref="Stdout"/>.</summary>
        Read,

        /// <summary>A pipe nobody reads (until <see cref="ReadStdout"/>): once its buffer is full, every write blocks.</summary>
        Unread,
    }

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private bool _reading;

    private ChildServer(Process process, string dataDirectory, int port)
    {
        _process = process;
        DataDirectory = dataDirectory;
        Port = port;
        // Always read, so a chatty stderr cannot block the child.
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.Append(e.Data).Append('\n');
                }
            }
        };
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    public string DataDirectory { get; }

    /// <summary>What the child wrote to stdout while it was read.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>What the child wrote to stderr (the start-up banner, a refusal to start).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static async Task<ChildServer> StartAsync(Output output = Output.Read, IDictionary<string, string?>? settings = null)
    {
        var dir = Directory.CreateTempSubdirectory("portcullis-child-").FullName;
        var port = PortcullisServer.FreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "portcullis.dll"), "serve", "--urls", $"https://127.0.0.1:{port}", "--data-dir", dir })
        {
            info.ArgumentList.Add(arg);
        }

        var all = PortcullisServer.TestSettings();
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        foreach (var (key, value) in all)
        {
            info.Environment["Portcullis__" + key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var server = new ChildServer(Process.Start(info)!, dir, port);
        if (output == Output.Read)
        {
            server.ReadStdout();
        }

        using var http = server.Client();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var live = await http.GetAsync("health/live");
                if (live.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (DateTime.UtcNow >= deadline || server._process.HasExited)
            {
                await server.DisposeAsync();
                Assert.Fail("the child server did not start: " + server.Stdout + server.Stderr);
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Starts reading stdout (for <see cref="Output.Unread"/>: the reader arrives late).</summary>
    public void ReadStdout()
    {
        if (_reading)
        {
            return;
        }

        _reading = true;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stdout)
                {
                    _stdout.Append(e.Data).Append('\n');
                }
            }
        };
        _process.BeginOutputReadLine();
    }

    /// <summary>Closes the only reader of the child's stdout: from now on each of its writes fails (a broken pipe).</summary>
    public void CloseStdout()
    {
        Assert.False(_reading, "stdout is being read; close it before reading starts");
        _process.StandardOutput.Close();
    }

    public HttpClient Client() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true }, // a throwaway self-signed test server
    })
    { BaseAddress = new Uri($"https://127.0.0.1:{Port}/") };

    /// <summary>Runs a CLI command in this process against the child's data directory (as an operator would beside it).</summary>
    public async Task<PortcullisServer.CliResult> RunCliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync([.. args, "--data-dir", DataDirectory], new StringReader(""), output, error);
        return new PortcullisServer.CliResult(exit, output.ToString(), error.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        using (var exited = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await _process.WaitForExitAsync(exited.Token); // bounded: also waits for the end of the output being read
        }

        _process.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // the OS cleans temp eventually
        }
    }
}
