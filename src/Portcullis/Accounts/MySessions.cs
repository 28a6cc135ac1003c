using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Access;
using Portcullis.Hosting;

namespace Portcullis.Accounts;

/// <summary>
/// <c>GET /api/me/sessions</c> and <c>DELETE /api/me/sessions/{id}</c>: a user sees and ends only their own
/// sessions. Another user's session id gets exactly the answer a random id gets (404).
/// </summary>
public static class MySessions
{
    public sealed record SessionItem(string Id, DateTimeOffset? Created, bool Current);

    public static async Task<Ok<List<SessionItem>>> ListAsync(ClaimsPrincipal caller, UserSessions sessions, CancellationToken ct)
    {
        var current = caller.FindFirstValue(PortcullisClaims.SessionId);
        var mine = await sessions.ListAsync(caller.UserId()!.Value, ct);
        return TypedResults.Ok(mine.Select(s => new SessionItem(s.Id, s.Created, s.Id == current)).ToList());
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> EndAsync(
        string id, ClaimsPrincipal caller, UserSessions sessions, CancellationToken ct) =>
        await sessions.EndAsync(caller.UserId()!.Value, id, ct)
            ? TypedResults.NoContent()
            : TypedResults.Problem(statusCode: 404, title: "Not found.", type: ProblemTypes.NotFound);
}
