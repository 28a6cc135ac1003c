using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Portcullis.RateLimits;

namespace Portcullis.Tests.Infrastructure;

/// <summary>
/// Endpoints only a test server has, mapped by <see cref="PortcullisServer"/> into the product's own pipeline (after
/// <c>PortcullisHost.BuildApp</c>, before start), so a request to them passes every product middleware: the
/// product itself ships no test-only route (STYLE.md).
/// </summary>
public static class TestEndpoints
{
    public const string FaultPath = "/test/fault";

    /// <summary>
    /// F01: throws, to show what an unhandled exception looks like to a client. Declared like any product endpoint
    /// (anonymous, anonymous rate-limit policy), so the deny-by-default walk checks it too.
    /// </summary>
    public static void MapFault(IEndpointRouteBuilder app) =>
        app.MapGet(FaultPath, () => { throw new InvalidOperationException("Deliberate test fault at /test/fault."); })
            .AllowAnonymous().RequireRateLimiting(RateLimitPolicies.Anonymous);
}
