using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// <c>POST /api/me/password</c>: needs the current password; the new one follows the password policy. Every
/// session of the user ends, this one included (ASVS V7.4.3): the client logs in again with the new password.
/// </summary>
public static class ChangePassword
{
    public sealed record Request([property: SecretData] string CurrentPassword, [property: SecretData] string NewPassword);

    public static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult, NotFound>> HandleAsync(
        HttpContext http, ClaimsPrincipal caller, UserManager<User> users, Argon2PasswordHasher hasher,
        PasswordPolicy passwords, SessionTerminator sessions, Audit.AuditLog audit, PasswordHashingLimiter hashing)
    {
        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem as ValidationProblem is { } v ? v : (ProblemHttpResult)problem;
        }

        if (caller.UserId() is not { } id || await users.FindByIdAsync(id.ToString()) is not { } user)
        {
            return TypedResults.NotFound();
        }

        if (passwords.IsOverLong(request!.CurrentPassword))
        {
            await audit.WriteAsync(Audit.AuditEvents.PasswordChangeFailed, Audit.AuditOutcomes.Failure, $"user:{user.Id}", ct: http.RequestAborted);
            return JsonBody.Invalid("currentPassword", "The current password is incorrect.");
        }

        // The new password's rules first (no hashing), then both hashes under one permit, the database write after it.
        var newPasswordError = passwords.Validate(request.NewPassword, user.UserName);
        var admission = await hashing.RunAsync(async () =>
        {
            if (!await users.CheckPasswordAsync(user, request.CurrentPassword))
            {
                return (Valid: false, Hash: (string?)null);
            }

            return (Valid: true, Hash: newPasswordError is null ? hasher.HashPassword(user, request.NewPassword) : null);
        }, http.RequestAborted);
        if (!admission.Admitted)
        {
            return hashing.Busy(http);
        }

        if (!admission.Value.Valid)
        {
            await audit.WriteAsync(Audit.AuditEvents.PasswordChangeFailed, Audit.AuditOutcomes.Failure, $"user:{user.Id}", ct: http.RequestAborted);
            return JsonBody.Invalid("currentPassword", "The current password is incorrect.");
        }

        if (newPasswordError is not null || admission.Value.Hash is not { } newHash)
        {
            return JsonBody.Invalid("newPassword", newPasswordError ?? "The new password is not valid.");
        }

        audit.Record(Audit.AuditEvents.PasswordChanged, Audit.AuditOutcomes.Success, $"user:{user.Id}", new { sessionsEnded = "all" });
        await sessions.EndAllSessionsAsync(user, () =>
        {
            user.PasswordHash = newHash;
            return users.UpdateAsync(user);
        }, http.RequestAborted);
        return TypedResults.NoContent();
    }
}
