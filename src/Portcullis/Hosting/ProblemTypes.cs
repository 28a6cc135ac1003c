namespace Portcullis.Hosting;

/// <summary>Stable RFC 9457 <c>type</c> URIs; listed in docs/problems.md.</summary>
public static class ProblemTypes
{
    private const string Base = "https://portcullis.dev/problems/";
    public const string Validation = Base + "validation";
    public const string MalformedJson = Base + "malformed-json";
    public const string UnsupportedMediaType = Base + "unsupported-media-type";
    public const string PayloadTooLarge = Base + "payload-too-large";
    public const string Conflict = Base + "conflict";
    public const string Unauthorized = Base + "unauthorized";
    public const string Forbidden = Base + "forbidden";
    public const string NotFound = Base + "not-found";
    public const string MethodNotAllowed = Base + "method-not-allowed";
    public const string HttpsRequired = Base + "https-required";
    public const string AmbiguousFraming = Base + "ambiguous-framing";
    public const string RegistrationClosed = Base + "registration-closed";
    public const string ServerError = Base + "server-error";
    public const string Unavailable = Base + "unavailable";
    public const string TooManyRequests = Base + "too-many-requests";
    public const string Busy = Base + "busy";

    public static string ForStatus(int status) => status switch
    {
        400 => MalformedJson,
        401 => Unauthorized,
        403 => Forbidden,
        404 => NotFound,
        405 => MethodNotAllowed,
        409 => Conflict,
        413 => PayloadTooLarge,
        415 => UnsupportedMediaType,
        429 => TooManyRequests,
        503 => Unavailable,
        >= 500 => ServerError,
        _ => "about:blank",
    };
}
