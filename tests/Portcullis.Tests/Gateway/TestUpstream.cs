using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Portcullis.Tests.Gateway;

/// <summary>
/// A tiny upstream on plain HTTP, 127.0.0.1, a free port: it echoes what it received (method, path, raw target,
/// headers, body) as JSON, sleeps on /slow, names its software on /leaky, and keeps notes owned by the forwarded
/// user id (the BOLA check).
/// </summary>
public sealed class TestUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestUpstream(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    /// <summary>The Server header /leaky answers with.</summary>
    public const string LeakyServer = "BaseHTTP/0.6 Python/3.11.7";

    /// <summary>Note id → owner's user id.</summary>
    public ConcurrentDictionary<string, string> Notes { get; } = new(StringComparer.Ordinal);

    public int Requests => _requests;

    private int _requests;

    public static async Task<TestUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Limits.MaxRequestBodySize = 16 * 1024 * 1024;
        });
        var app = builder.Build();
        TestUpstream? self = null;
        app.Use(async (context, next) =>
        {
            Interlocked.Increment(ref self!._requests);
            await next(context);
        });
        app.MapGet("/notes/{id}", (string id, HttpContext context) =>
        {
            // The upstream trusts only the gateway's identity header for ownership.
            var user = context.Request.Headers["X-Portcullis-User-Id"].ToString();
            return self!.Notes.TryGetValue(id, out var owner) && owner == user
                ? Results.Json(new { id, owner })
                : Results.NotFound();
        });
        app.Map("/slow/{**rest}", async (HttpContext context) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(5), context.RequestAborted);
            return Results.Ok();
        });
        // Names its software the way real upstreams do (Python's http.server, PHP, classic ASP.NET), plus a header of
        // its own that must pass; ?status= answers with another status.
        foreach (var prefix in new[] { "/leaky", "/leaky-kept" })
        {
            app.MapGet(prefix + "/{**rest}", (HttpContext context, int? status) =>
            {
                var headers = context.Response.Headers;
                headers.Server = LeakyServer;
                headers["X-Powered-By"] = "PHP/8.3.1";
                headers["X-AspNet-Version"] = "4.0.30319";
                headers["X-AspNetMvc-Version"] = "5.2";
                headers["X-Request-Id"] = "upstream-request-42";
                return Results.Text("leaky", statusCode: status ?? 200);
            });
        }

        app.Map("/{**rest}", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            return Results.Json(new
            {
                method = context.Request.Method,
                path = context.Request.Path.Value,
                rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget,
                headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
                body,
            });
        });
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        self = new TestUpstream(app, address);
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
