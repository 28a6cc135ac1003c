using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// The password check shared by every credential endpoint (the token endpoint's password grant, the required
/// password change), and their refusals. It lives here, not with the token endpoint, so that Accounts never calls
/// into Tokens: the token endpoint asks Accounts whether a password is right.
/// </summary>
public sealed class Credentials(UserManager<User> users, Argon2PasswordHasher hasher, PasswordPolicy passwords, PasswordHashingLimiter hashing)
{
    /// <summary>The refusal when <c>Accounts:RequireVerifiedEmail</c> is on; given only after the right password.</summary>
    public const string EmailNotVerified = "The e-mail address of this account is not verified yet: open the link in the message sent when the account was created.";

    /// <summary>
    /// The verdict, and the account the name belongs to (if any) for the audit trail: one lookup. <see cref="Busy"/>:
    /// password hashing was at capacity and the password was not checked.
    /// </summary>
    public readonly record struct Check(User? Valid, User? Known, bool Busy = false);

    /// <summary>
    /// Verifies a login with equal work whatever the outcome: an unknown user costs a dummy hash, a disabled user
    /// the real one. A password too long to be valid is refused before any hashing (long-password DoS). Admission
    /// to hashing (<see cref="PasswordHashingLimiter"/>) is asked for every name alike, after the same lookup, so a
    /// busy answer says nothing about the account.
    /// </summary>
    public async Task<Check> CheckAsync(string? username, string? password, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(password) || passwords.IsOverLong(password))
        {
            return new Check(null, await FindAsync(username)); // no hashing, so no permit
        }

        // Looked up before admission: the hash then runs in the synchronous part of the work, on the limiter's thread.
        var user = await FindAsync(username);
        var admission = await hashing.RunAsync(async () =>
        {
            if (user is null)
            {
                hasher.VerifyDummy(password);
                return new Check(null, null);
            }

            // CheckPasswordAsync also rewrites a hash made with older parameters.
            var valid = await users.CheckPasswordAsync(user, password);
            return new Check(valid && !user.IsDisabled ? user : null, user);
        }, ct);
        return admission.Admitted ? admission.Value : new Check(null, null, Busy: true);
    }

    /// <summary>Hashes a new password under its own permit (a check before it has released its one).</summary>
    public Task<PasswordHashingLimiter.Admission<string>> HashAsync(User user, string password, CancellationToken ct) =>
        hashing.RunAsync(() => Task.FromResult(hasher.HashPassword(user, password)), ct);

    /// <summary>The answer when password hashing is at capacity: 503 with Retry-After (<see cref="PasswordHashingLimiter.Busy"/>).</summary>
    public ProblemHttpResult Busy(HttpContext http) => hashing.Busy(http);

    /// <summary>The throttled answer of every credential endpoint: 429 problem+json with Retry-After.</summary>
    public static ProblemHttpResult TooManyAttempts(HttpContext http, TimeSpan wait)
    {
        http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many login attempts; try again later.", type: ProblemTypes.TooManyRequests);
    }

    private async Task<User?> FindAsync(string? username) =>
        string.IsNullOrEmpty(username) || username.Length > UsernameRules.MaxLength * 4 || UsernameRules.Validate(username) is not null
            ? null
            : await users.FindByNameAsync(username);
}
