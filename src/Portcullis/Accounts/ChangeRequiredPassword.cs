using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Hosting;
using Portcullis.RateLimits;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// <c>POST /api/accounts/password</c>: a user whom an administrator required to change their password, and who
/// therefore cannot get a token, proves the current password and sets a new one. Same throttling, same equal work
/// and the same answer for an unknown user as a login.
/// </summary>
public static class ChangeRequiredPassword
{
    public sealed record Request([property: PiiData] string Username, [property: SecretData] string CurrentPassword, [property: SecretData] string NewPassword);

    public static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> HandleAsync(
        HttpContext http, Credentials credentials, UserManager<User> users, PasswordPolicy passwords,
        SessionTerminator sessions, LoginThrottle throttle, Audit.AuditLog audit)
    {
        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem is ValidationProblem v ? v : (ProblemHttpResult)problem;
        }

        if (throttle.Check(http.Connection.RemoteIpAddress, request!.Username) is { } wait)
        {
            return Credentials.TooManyAttempts(http, wait);
        }

        var (user, _, busy) = await credentials.CheckAsync(request.Username, request.CurrentPassword, http.RequestAborted);
        if (busy)
        {
            return credentials.Busy(http);
        }

        if (user is null)
        {
            throttle.Failed(request.Username);
            await audit.WriteAsync(Audit.AuditEvents.PasswordChangeFailed, Audit.AuditOutcomes.Failure, audit.PersonalName(request.Username), ct: http.RequestAborted);
            return JsonBody.Invalid("currentPassword", "The username or password is incorrect.");
        }

        throttle.Succeeded(request.Username);
        if (passwords.Validate(request.NewPassword, user.UserName) is { } error)
        {
            return JsonBody.Invalid("newPassword", error);
        }

        if (request.NewPassword == request.CurrentPassword)
        {
            return JsonBody.Invalid("newPassword", "The new password must differ from the current one.");
        }

        // A second admission for the new hash (the check above released its permit): refused, nothing has changed.
        var hashed = await credentials.HashAsync(user, request.NewPassword, http.RequestAborted);
        if (!hashed.Admitted)
        {
            return credentials.Busy(http);
        }

        audit.Record(Audit.AuditEvents.PasswordChanged, Audit.AuditOutcomes.Success, $"user:{user.Id}", new { required = true }, actor: $"user:{user.Id}");
        await sessions.EndAllSessionsAsync(user, () =>
        {
            user.PasswordHash = hashed.Value;
            user.MustChangePassword = false;
            return users.UpdateAsync(user);
        }, http.RequestAborted);
        return TypedResults.NoContent();
    }
}
