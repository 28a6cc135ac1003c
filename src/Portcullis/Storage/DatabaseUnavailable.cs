using System.Data.Common;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Portcullis.Hosting;

namespace Portcullis.Storage;

/// <summary>
/// F02: an unreachable or timed-out database answers 503 problem+json (type <c>unavailable</c>, <c>Retry-After</c>)
/// instead of a 500. Nothing is cached about the outage: the next request tries the database again, so service
/// resumes by itself when the database returns. Other exceptions fall through to the generic 500.
/// </summary>
public sealed partial class DatabaseUnavailable(IProblemDetailsService problems, ILogger<DatabaseUnavailable> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (!IsUnavailable(exception) || httpContext.Response.HasStarted)
        {
            return false;
        }

        LogUnavailable(logger, exception.GetType().Name);
        httpContext.Response.Clear();
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = "5";
        httpContext.Response.Headers.CacheControl = "no-store";
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Type = ProblemTypes.Unavailable,
                Title = "The service is temporarily unavailable. Try again shortly.",
            },
        });
    }

    /// <summary>A connection failure or timeout anywhere in the chain (EF and OpenIddict wrap provider exceptions).</summary>
    public static bool IsUnavailable(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is TimeoutException || (e is DbException db && db.IsTransient)
                || (e is Npgsql.NpgsqlException && e is not Npgsql.PostgresException))
            {
                return true;
            }
        }

        return false;
    }

    [LoggerMessage(EventId = EventIds.Storage.DatabaseUnavailable, EventName = "db_unavailable", Level = LogLevel.Error,
        Message = "db_unavailable: the database could not be reached ({ExceptionType}); answered 503.")]
    private static partial void LogUnavailable(ILogger logger, string exceptionType);
}
