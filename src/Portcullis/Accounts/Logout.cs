using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Access;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Accounts;

/// <summary>
/// <c>POST /api/me/logout</c> ends the caller's session (its refresh-token family, and this access token at once);
/// <c>POST /api/me/logout-everywhere</c> ends all of the caller's sessions.
/// </summary>
public static class Logout
{
    public static async Task<NoContent> HandleAsync(ClaimsPrincipal caller, SessionTerminator sessions, Audit.AuditLog audit, HttpContext http)
    {
        audit.Record(Audit.AuditEvents.TokenRevoked, Audit.AuditOutcomes.Success, $"session:{caller.FindFirstValue(PortcullisClaims.SessionId)}", new { via = "logout" });
        await sessions.EndSessionAsync(caller.FindFirstValue(PortcullisClaims.SessionId), caller.FindFirstValue(Claims.JwtId), http.RequestAborted);
        return TypedResults.NoContent();
    }

    public static async Task<Results<NoContent, NotFound>> EverywhereAsync(
        ClaimsPrincipal caller, UserManager<User> users, SessionTerminator sessions, Audit.AuditLog audit, HttpContext http)
    {
        if (caller.UserId() is not { } id || await users.FindByIdAsync(id.ToString()) is not { } user)
        {
            return TypedResults.NotFound();
        }

        audit.Record(Audit.AuditEvents.LoggedOutEverywhere, Audit.AuditOutcomes.Success, $"user:{user.Id}");
        await sessions.EndAllSessionsAsync(user, change: null, http.RequestAborted);
        return TypedResults.NoContent();
    }
}
