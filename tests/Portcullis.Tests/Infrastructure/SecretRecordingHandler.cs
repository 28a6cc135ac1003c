namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// Sits in every test client: records the bearer token, the password / secret / token fields of form and JSON
/// bodies sent, and the same fields of JSON answers (issued tokens, new client secrets) in the canary.
/// Bodies are buffered only when they are small forms or JSON, so the request and response stay readable.
/// </summary>
public sealed class SecretRecordingHandler(SecretCanary canary) : DelegatingHandler
{
    private const long MaxBody = 256 * 1024;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.Authorization is { } authorization)
        {
            canary.Record(authorization.Parameter);
        }

        await RecordBodyAsync(request.Content, cancellationToken);
        var response = await base.SendAsync(request, cancellationToken);
        await RecordBodyAsync(response.Content, cancellationToken);
        return response;
    }

    private async Task RecordBodyAsync(HttpContent? content, CancellationToken ct)
    {
        var type = content?.Headers.ContentType?.MediaType;
        if (content is null || type is null || content.Headers.ContentLength is > MaxBody)
        {
            return;
        }

        if (type == "application/x-www-form-urlencoded")
        {
            canary.RecordFromForm(await content.ReadAsStringAsync(ct));
        }
        else if (type is "application/json" || type.EndsWith("+json", StringComparison.Ordinal))
        {
            // Not application/x-ndjson: the streamed export is left alone.
            canary.RecordFromJson(await content.ReadAsStringAsync(ct));
        }
    }
}
