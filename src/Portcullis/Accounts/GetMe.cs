using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Access;
using Portcullis.Hosting;

namespace Portcullis.Accounts;

/// <summary><c>GET /api/me</c>: the caller's own profile and roles.</summary>
public static class GetMe
{
    public sealed record Response(Guid Id, [property: PiiData] string Username, [property: PiiData] string Email, DateTimeOffset Created, IReadOnlyList<string> Roles);

    /// <summary>
    /// The hot path: answered from the user state the token check has just loaded (cached, invalidated on every
    /// change), so it costs no database query (BENCHMARKS.md).
    /// </summary>
    public static async Task<Results<Ok<Response>, NotFound>> HandleAsync(ClaimsPrincipal caller, RevocationState users, CancellationToken ct)
    {
        if (caller.UserId() is not { } id || await users.GetUserAsync(id, ct) is not { Active: true, Username: { } username, Email: { } email } state)
        {
            return TypedResults.NotFound();
        }

        return TypedResults.Ok(new Response(id, username, email, state.Created, state.Roles));
    }
}
