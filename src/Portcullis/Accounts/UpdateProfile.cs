using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// <c>PATCH /api/me</c>: a user changes their own e-mail address, re-authenticating with the current password
/// (ASVS V7.5.1). Exactly these members: <c>role</c>, <c>id</c> and the like are refused (400), never bound.
/// </summary>
public static class UpdateProfile
{
    public sealed record Request([property: PiiData] string Email, [property: SecretData] string CurrentPassword);

    public static async Task<Results<Ok<GetMe.Response>, ValidationProblem, ProblemHttpResult, NotFound>> HandleAsync(
        HttpContext http, ClaimsPrincipal caller, UserManager<User> users, PasswordPolicy passwords, Audit.AuditLog audit,
        PortcullisDb db, RevocationState revocations, PasswordHashingLimiter hashing)
    {
        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem is ValidationProblem v ? v : (ProblemHttpResult)problem;
        }

        if (caller.UserId() is not { } id || await users.FindByIdAsync(id.ToString()) is not { } user)
        {
            return TypedResults.NotFound();
        }

        if (passwords.IsOverLong(request!.CurrentPassword))
        {
            return JsonBody.Invalid("currentPassword", "The current password is incorrect.");
        }

        var verified = await hashing.RunAsync(() => users.CheckPasswordAsync(user, request.CurrentPassword), http.RequestAborted);
        if (!verified.Admitted)
        {
            return hashing.Busy(http);
        }

        if (!verified.Value)
        {
            return JsonBody.Invalid("currentPassword", "The current password is incorrect.");
        }

        if (AccountCreator.ValidateEmail(request.Email) is { } emailError)
        {
            return JsonBody.Invalid("email", emailError);
        }

        audit.Record(Audit.AuditEvents.ProfileChanged, Audit.AuditOutcomes.Success, $"user:{user.Id}", new { changed = "email" });
        // The cached profile (GET /api/me) changes: every instance re-reads this user (feed row in the same save).
        revocations.Add(db, RevocationKinds.User, user.Id.ToString());
        var result = await users.SetEmailAsync(user, request.Email);
        if (!result.Succeeded)
        {
            return result.Errors.Any(e => e.Code == "DuplicateEmail")
                ? TypedResults.Problem(statusCode: 409, title: "The username or e-mail address is not available.", type: ProblemTypes.Conflict)
                : JsonBody.Invalid("email", "The e-mail address is not valid.");
        }

        revocations.InvalidateUser(user.Id);
        var roles = await users.GetRolesAsync(user);
        return TypedResults.Ok(new GetMe.Response(user.Id, user.UserName!, user.Email!, user.CreatedAt, [.. roles.Order(StringComparer.Ordinal)]));
    }
}
