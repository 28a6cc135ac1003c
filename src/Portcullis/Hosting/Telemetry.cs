using System.Diagnostics.Metrics;
using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.Enrichment;
using OpenTelemetry.Metrics;
using Portcullis.Access;
using Portcullis.Audit;

namespace Portcullis.Hosting;

/// <summary>
/// Security metrics (Prometheus via OpenTelemetry at <c>/metrics</c>, permission <c>metrics:read</c>). Labels are
/// fixed small sets — outcome, grant type, route template — never a user-supplied value or a secret.
/// </summary>
public sealed class PortcullisMetrics : IDisposable
{
    public const string MeterName = "Portcullis";

    private readonly Meter _meter = new(MeterName);

    public PortcullisMetrics(LogSinks logSinks)
    {
        Logins = _meter.CreateCounter<long>("portcullis.logins", description: "Password logins by outcome (success, failure, throttled, busy).");
        TokensIssued = _meter.CreateCounter<long>("portcullis.tokens.issued", description: "Token responses by grant type.");
        AuthorizationDenials = _meter.CreateCounter<long>("portcullis.authorization.denials", description: "403 answers for a missing permission.");
        RateLimitRejections = _meter.CreateCounter<long>("portcullis.ratelimit.rejections", description: "Requests refused by a rate limit.");
        AuditWriteFailures = _meter.CreateCounter<long>("portcullis.audit.write_failures", description: "Audit events that could not be written or sealed.");
        SecurityAlerts = _meter.CreateCounter<long>("portcullis.security.alerts", description: "Raised security alerts by kind.");
        PasswordHashes = _meter.CreateCounter<long>("portcullis.password.hashes", description: "Password hashes and verifications run, by operation (hash, verify, verify_dummy).");
        // Read from the log writers when scraped: nothing is added on the logging path.
        _meter.CreateObservableCounter("portcullis.log.lines_dropped", () => logSinks.Writers.SelectMany(w => new[]
        {
            new Measurement<long>(w.LinesDroppedQueueFull, new("sink", w.Sink), new("reason", "queue_full")),
            new Measurement<long>(w.LinesDroppedWriteFailed, new("sink", w.Sink), new("reason", "write_failed")),
        }), description: "Log lines lost by sink (stdout, file) and reason (queue_full: the sink did not keep up or is stuck; write_failed).");
        _meter.CreateObservableCounter("portcullis.log.write_failures", () => logSinks.Writers.Select(w =>
            new Measurement<long>(w.WriteFailures, new KeyValuePair<string, object?>("sink", w.Sink))), description: "Failed writes (each of one or more lines) by log sink.");
        _meter.CreateObservableGauge("portcullis.log.sink_failing", () => logSinks.Writers.Select(w =>
            new Measurement<int>(w.IsFailing ? 1 : 0, new KeyValuePair<string, object?>("sink", w.Sink))), description: "1 while a log sink loses lines or is stuck (readiness then reports degraded).");
    }

    public Counter<long> Logins { get; }

    public Counter<long> TokensIssued { get; }

    public Counter<long> AuthorizationDenials { get; }

    public Counter<long> RateLimitRejections { get; }

    public Counter<long> AuditWriteFailures { get; }

    public Counter<long> SecurityAlerts { get; }

    public Counter<long> PasswordHashes { get; }

    public void Dispose() => _meter.Dispose();
}

public static partial class Telemetry
{
    public static IServiceCollection AddPortcullisTelemetry(this IServiceCollection services)
    {
        services.AddSingleton<PortcullisMetrics>();
        services.AddSingleton<LogSinks>();
        services.AddHostedService<LogSinkMonitor>();
        services.AddLogEnricher<RequestLogEnricher>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddAspNetCoreInstrumentation()
            .AddMeter(PortcullisMetrics.MeterName)
            .AddPrometheusExporter());
        return services;
    }

    /// <summary>
    /// One log line per request — method, route template (never the raw path), status, duration. The caller's user
    /// id and client IP are added to it, and to every other line the request writes, by <see cref="RequestLogEnricher"/>.
    /// The hot path is kept cheap: one logger for the app (not one lookup per request), no per-request scope, the
    /// trimmed route template computed once per endpoint, and a source-generated log method.
    /// </summary>
    public static IApplicationBuilder UseRequestLogging(this IApplicationBuilder app)
    {
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Portcullis.Requests");
        return app.Use(async (context, next) =>
        {
            if (!logger.IsEnabled(LogLevel.Information))
            {
                await next(context);
                return;
            }

            var started = Stopwatch.GetTimestamp();
            var failed = false;
            try
            {
                await next(context);
            }
            catch
            {
                failed = true; // the exception handler outside turns it into a 500 (499 if the client went away)
                throw;
            }
            finally
            {
#pragma warning disable CA1873 // guarded by IsEnabled above
                var status = !failed ? context.Response.StatusCode
                    : context.RequestAborted.IsCancellationRequested ? StatusCodes.Status499ClientClosedRequest // not a server error
                    : StatusCodes.Status500InternalServerError;
                LogRequest(logger, context.Request.Method, RouteOf(context), status, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
#pragma warning restore CA1873
            }
        });
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<RouteEndpoint, string> Routes = [];

    private static string RouteOf(HttpContext context) =>
        context.GetEndpoint() is RouteEndpoint endpoint
            ? Routes.GetValue(endpoint, static e => e.RoutePattern.RawText is { Length: > 1 } t ? t.TrimEnd('/') : e.RoutePattern.RawText ?? "(no route)")
            : "(no route)";

    [LoggerMessage(EventId = EventIds.Hosting.RequestCompleted, Level = LogLevel.Information, Message = "{Method} {Route} {Status} {DurationMs:F1} ms")]
    private static partial void LogRequest(ILogger logger, string method, string route, int status, double durationMs);
}

/// <summary>
/// Adds <c>TraceId</c> (the W3C trace id, as in the problem details' <c>traceId</c> and the audit trail), <c>UserId</c>
/// (or the client id of a client-credentials caller) and <c>ClientIp</c> to every log line written while a request is
/// handled. Enrichment happens only when a line is written, so a request that logs one
/// line pays once, and nothing is allocated per request for it. (The extended logger factory that runs enrichers is
/// the one <c>EnableRedaction</c> installs.)
/// </summary>
public sealed class RequestLogEnricher(IHttpContextAccessor http) : ILogEnricher
{
    public void Enrich(IEnrichmentTagCollector collector)
    {
        if (http.HttpContext is not { } context)
        {
            return;
        }

        if (Activity.Current is { } activity)
        {
            collector.Add("TraceId", activity.TraceId.ToHexString());
        }

        if (context.User.Identity?.IsAuthenticated == true)
        {
            collector.Add("UserId", context.User.UserId() is { } id ? id : AuditLog.ActorOf(context.User));
        }

        if (context.Connection.RemoteIpAddress is { } ip)
        {
            collector.Add("ClientIp", ip);
        }
    }
}
