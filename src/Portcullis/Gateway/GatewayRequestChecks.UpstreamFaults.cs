using Portcullis.Hosting;
using Yarp.ReverseProxy.Forwarder;

namespace Portcullis.Gateway;

// Upstream faults turned into problem answers that say nothing about the upstream.
public sealed partial class GatewayRequestChecks
{
    private async Task UpstreamFaultAsync(HttpContext context, GatewayRoute route, IForwarderErrorFeature error)
    {
        var (status, type, title) = error.Error switch
        {
            ForwarderError.RequestTimedOut => (StatusCodes.Status504GatewayTimeout, GatewayProblems.UpstreamTimeout, "The upstream service did not answer in time."),
            ForwarderError.RequestBodyClient when error.Exception is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }
                => (StatusCodes.Status413PayloadTooLarge, ProblemTypes.PayloadTooLarge, "The request body is too large."),
            ForwarderError.RequestBodyClient or ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled
                => (context.Response.StatusCode is >= 400 and < 500 ? context.Response.StatusCode : StatusCodes.Status400BadRequest, ProblemTypes.MalformedJson, "The request could not be read."),
            _ => (StatusCodes.Status502BadGateway, GatewayProblems.UpstreamUnavailable, "The upstream service is unavailable."),
        };
        if (context.RequestAborted.IsCancellationRequested)
        {
            return; // the caller left; nobody to answer
        }

        context.Response.Clear();
        if (status >= 500)
        {
            // The exception stays in the log (by type and YARP's own log); the caller learns nothing about the upstream.
            LogUpstreamFault(logger, route.Name, error.Error.ToString(), status);
            await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayUpstreamFault, route.Name,
                new { method = context.Request.Method, status, error = error.Error.ToString() });
            await GatewayProblems.WriteAsync(context, status, type, title);
        }
        else
        {
            await RefuseAsync(context, route, status, type, title, "body");
        }
    }
}
