using System.Diagnostics;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using Portcullis.Audit;
using Portcullis.Tokens;

namespace Portcullis.Hosting;

/// <summary>
/// Security metrics (Prometheus via OpenTelemetry at <c>/metrics</c>, permission <c>metrics:read</c>). Labels are
/// fixed small sets — outcome, grant type, route template — never a user-supplied value or a secret.
/// </summary>
public sealed class PortcullisMetrics : IDisposable
{
    public const string MeterName = "Portcullis";

    private readonly Meter _meter = new(MeterName);

    public PortcullisMetrics()
    {
        Logins = _meter.CreateCounter<long>("portcullis.logins", description: "Password logins by outcome (success, failure, throttled).");
        TokensIssued = _meter.CreateCounter<long>("portcullis.tokens.issued", description: "Token responses by grant type.");
        AuthorizationDenials = _meter.CreateCounter<long>("portcullis.authorization.denials", description: "403 answers for a missing permission.");
        RateLimitRejections = _meter.CreateCounter<long>("portcullis.ratelimit.rejections", description: "Requests refused by a rate limit.");
        AuditWriteFailures = _meter.CreateCounter<long>("portcullis.audit.write_failures", description: "Audit events that could not be written or sealed.");
        SecurityAlerts = _meter.CreateCounter<long>("portcullis.security.alerts", description: "Raised security alerts by kind.");
    }

    public Counter<long> Logins { get; }

    public Counter<long> TokensIssued { get; }

    public Counter<long> AuthorizationDenials { get; }

    public Counter<long> RateLimitRejections { get; }

    public Counter<long> AuditWriteFailures { get; }

    public Counter<long> SecurityAlerts { get; }

    public void Dispose() => _meter.Dispose();
}

public static partial class Telemetry
{
    public static IServiceCollection AddPortcullisTelemetry(this IServiceCollection services)
    {
        services.AddSingleton<PortcullisMetrics>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddAspNetCoreInstrumentation()
            .AddMeter(PortcullisMetrics.MeterName)
            .AddPrometheusExporter());
        return services;
    }

    /// <summary>
    /// One log line per request — method, route template (never the raw path), status, duration — inside a scope
    /// carrying the caller's user id and client IP, so every line the request writes has them too.
    /// </summary>
    public static IApplicationBuilder UseRequestLogging(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Portcullis.Requests");
            if (!logger.IsEnabled(LogLevel.Information))
            {
                await next(context);
                return;
            }

            var started = Stopwatch.GetTimestamp();
            var failed = false;
            using var scope = RequestScope(logger,
                context.User.UserId()?.ToString() ?? (context.User.Identity?.IsAuthenticated == true ? AuditLog.ActorOf(context.User) : null),
                context.Connection.RemoteIpAddress?.ToString());
            try
            {
                await next(context);
            }
            catch
            {
                failed = true; // the exception handler outside turns it into a 500
                throw;
            }
            finally
            {
                var template = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
                var route = template is null ? "(no route)" : template.Length > 1 ? template.TrimEnd('/') : template;
#pragma warning disable CA1873 // guarded by IsEnabled above
                LogRequest(logger, context.Request.Method, route, failed ? 500 : context.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
#pragma warning restore CA1873
            }
        });

    private static readonly Func<ILogger, string?, string?, IDisposable?> RequestScope =
        LoggerMessage.DefineScope<string?, string?>("UserId:{UserId} ClientIp:{ClientIp}");

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "{Method} {Route} {Status} {DurationMs:F1} ms")]
    private static partial void LogRequest(ILogger logger, string method, string route, int status, double durationMs);
}
