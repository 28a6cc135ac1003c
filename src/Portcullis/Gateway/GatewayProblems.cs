namespace Portcullis.Gateway;

/// <summary>Problem types the gateway adds; listed in docs/problems.md.</summary>
public static class GatewayProblems
{
    private const string Base = "https://portcullis.dev/problems/";
    public const string InvalidPath = Base + "invalid-path";
    public const string UpstreamUnavailable = Base + "upstream-unavailable";
    public const string UpstreamTimeout = Base + "upstream-timeout";

    public static Task WriteAsync(HttpContext context, int status, string type, string title, IDictionary<string, object?>? extensions = null)
    {
        context.Response.StatusCode = status;
        return context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = { Status = status, Type = type, Title = title, Extensions = extensions ?? new Dictionary<string, object?>() },
        }).AsTask();
    }
}
