using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Portcullis.Hosting;

/// <summary>
/// The last problem writer: when the request's <c>Accept</c> rules out JSON (a browser's <c>text/html</c>), the
/// framework's writer declines and the status-code pages would answer <c>text/plain</c>, and a
/// <c>WriteAsync</c> caller (the 429 answer) would throw. An error is problem+json whatever was asked for (HDR-11:
/// the response type is never taken from <c>Accept</c>). Registered after the framework's writer, so a request that
/// accepts JSON is answered exactly as before.
/// </summary>
public sealed class ProblemJsonWhateverAccept(IOptions<ProblemDetailsOptions> problems, IOptions<JsonOptions> json) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => true;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var http = context.HttpContext;
        var problem = context.ProblemDetails;
        // What the framework's writer fills in before the customiser runs: status, a title, the trace id.
        problem.Status ??= http.Response.StatusCode;
        problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
        if (!problem.Extensions.ContainsKey("traceId"))
        {
            problem.Extensions["traceId"] = Activity.Current?.Id ?? http.TraceIdentifier;
        }

        problems.Value.CustomizeProblemDetails?.Invoke(context);
        var typeInfo = json.Value.SerializerOptions.GetTypeInfo(problem.GetType());
        return new ValueTask(http.Response.WriteAsJsonAsync(problem, typeInfo, "application/problem+json", http.RequestAborted));
    }
}
