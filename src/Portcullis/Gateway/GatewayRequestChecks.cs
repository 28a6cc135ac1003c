using Portcullis.Hosting;
using Yarp.ReverseProxy.Forwarder;

namespace Portcullis.Gateway;

/// <summary>
/// The gateway's own step in YARP's proxy pipeline, after authentication, authorization and rate limiting: refuse
/// paths that could mean something else upstream, enforce media type and size, validate the body against the
/// route's schema (buffering only then, and only up to the limit), and turn upstream faults into problem answers.
/// </summary>
public sealed partial class GatewayRequestChecks(RequestDelegate next, ILogger<GatewayRequestChecks> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var route = context.GetEndpoint()?.Metadata.GetMetadata<GatewayRoute>();
        if (route is null)
        {
            // Not one of ours (cannot happen: every gateway endpoint carries its route); refuse rather than forward.
            await GatewayProblems.WriteAsync(context, StatusCodes.Status404NotFound, ProblemTypes.NotFound, "Not found.");
            return;
        }

        if (PathProblem(context) is { } pathProblem)
        {
            await RefuseAsync(context, route, StatusCodes.Status400BadRequest, GatewayProblems.InvalidPath,
                "The path contains an encoded slash, a dot segment or an empty segment.", pathProblem);
            return;
        }

        if (!await CheckBodyAsync(context, route))
        {
            return;
        }

        await next(context);

        if (context.Features.Get<IForwarderErrorFeature>() is { } error && !context.Response.HasStarted)
        {
            await UpstreamFaultAsync(context, route, error);
        }
    }

    private async Task RefuseAsync(HttpContext context, GatewayRoute route, int status, string type, string title, string reason,
        Dictionary<string, object?>? extensions = null, IEnumerable<string>? fields = null)
    {
        LogRefused(logger, route.Name, reason, status);
        await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayInvalidRequest, route.Name,
            new { method = context.Request.Method, reason, status, fields = fields?.Take(20).ToArray() });
        await GatewayProblems.WriteAsync(context, status, type, title, extensions);
    }

    [LoggerMessage(EventId = EventIds.Gateway.RequestRefused, EventName = "gateway_request_refused", Level = LogLevel.Information,
        Message = "gateway_request_refused: route {Route}, reason {Reason}, status {Status}.")]
    private static partial void LogRefused(ILogger logger, string route, string reason, int status);

    [LoggerMessage(EventId = EventIds.Gateway.UpstreamFault, EventName = "gateway_upstream_fault", Level = LogLevel.Warning,
        Message = "gateway_upstream_fault: route {Route}, error {Error}, status {Status}.")]
    private static partial void LogUpstreamFault(ILogger logger, string route, string error, int status);
}
