using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.Accounts;

/// <summary><c>GET /api/me</c>: the caller's own profile and roles.</summary>
public static class GetMe
{
    public sealed record Response(Guid Id, string Username, string Email, DateTimeOffset Created, IReadOnlyList<string> Roles);

    public static async Task<Results<Ok<Response>, NotFound>> HandleAsync(ClaimsPrincipal caller, UserManager<User> users)
    {
        if (caller.UserId() is not { } id || await users.FindByIdAsync(id.ToString()) is not { } user)
        {
            return TypedResults.NotFound();
        }

        var roles = await users.GetRolesAsync(user);
        return TypedResults.Ok(new Response(user.Id, user.UserName!, user.Email!, user.CreatedAt, [.. roles.Order(StringComparer.Ordinal)]));
    }
}
