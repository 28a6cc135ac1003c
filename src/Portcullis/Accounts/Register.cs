using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>Self-registration: <c>POST /api/accounts</c>. The new account gets the <c>user</c> role and nothing else.</summary>
public static partial class Register
{
    /// <summary>Exactly these members; anything else (e.g. <c>role</c>) is refused with 400.</summary>
    public sealed record Request([property: PiiData] string Username, [property: PiiData] string Email, [property: SecretData] string Password);

    public sealed record AccountResponse(Guid Id, [property: PiiData] string Username, [property: PiiData] string Email, DateTimeOffset Created);

    public static async Task<Results<Created<AccountResponse>, ValidationProblem, ProblemHttpResult>> HandleAsync(
        HttpContext http, AccountCreator creator, IOptions<AccountOptions> options, PasswordHashingLimiter hashing)
    {
        if (!options.Value.AllowRegistration)
        {
            return TypedResults.Problem(statusCode: 403, title: "Self-registration is switched off.", type: ProblemTypes.RegistrationClosed);
        }

        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem switch
            {
                ValidationProblem v => v,
                ProblemHttpResult p => p,
                _ => throw new InvalidOperationException("Unexpected problem result."),
            };
        }

        var result = await creator.CreateAsync(request!.Username, request.Email, request.Password, [Roles.User], http.RequestAborted);
        return result.Match<Results<Created<AccountResponse>, ValidationProblem, ProblemHttpResult>>(
            user => TypedResults.Created($"/api/me", new AccountResponse(user.Id, user.UserName!, user.Email!, user.CreatedAt)),
            errors => TypedResults.ValidationProblem(errors, title: "The request is invalid.", type: ProblemTypes.Validation),
            () => TypedResults.Problem(statusCode: 409, title: "The username or e-mail address is not available.", type: ProblemTypes.Conflict),
            () => hashing.Busy(http));
    }
}

/// <summary>Creates accounts for registration and the CLI, with the same rules for both.</summary>
public sealed partial class AccountCreator(
    PortcullisDb db, UserManager<User> users, PasswordPolicy passwords, Argon2PasswordHasher hasher, PasswordHashingLimiter hashing,
    TimeProvider time, Audit.AuditLog audit, IHttpContextAccessor http, EmailVerification verification)
{
    public sealed class Outcome
    {
        public User? User { get; init; }
        public Dictionary<string, string[]>? Errors { get; init; }

        /// <summary>
        /// The address belongs to another account: <see cref="User"/> is a stand-in that was never stored, answered
        /// like a new account so that sign-up does not reveal the address (the owner was told by mail).
        /// </summary>
        public bool StandIn { get; init; }

        /// <summary>Password hashing was at capacity: nothing was created.</summary>
        public bool Busy { get; init; }

        public T Match<T>(Func<User, T> created, Func<Dictionary<string, string[]>, T> invalid, Func<T> conflict, Func<T> busy) =>
            User is not null ? created(User) : Errors is not null ? invalid(Errors) : Busy ? busy() : conflict();
    }

    public async Task<Outcome> CreateAsync(string username, string email, string password, IReadOnlyList<string> roles, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (UsernameRules.Validate(username) is { } usernameError)
        {
            errors["username"] = [usernameError];
        }

        if (ValidateEmail(email) is { } emailError)
        {
            errors["email"] = [emailError];
        }

        // The password is checked before anything else touches it; a too-long one is never hashed.
        if (passwords.Validate(password, errors.ContainsKey("username") ? null : username) is { } passwordError)
        {
            errors["password"] = [passwordError];
        }

        if (errors.Count > 0)
        {
            return new Outcome { Errors = errors };
        }

        var user = new User
        {
            Id = Guid.NewGuid(),
            UserName = UsernameRules.Canonical(username),
            Email = email,
            CreatedAt = time.GetUtcNow(),
            SecurityStamp = Guid.NewGuid().ToString("N"),
            // An operator (CLI) vouches for the address; a self-registered one is verified by the link it is sent.
            EmailConfirmed = http.HttpContext is null,
        };

        // Hashed before the transaction, under a permit: the transaction (and SQLite's write lock) never waits on Argon2.
        var hashed = await hashing.RunAsync(() => Task.FromResult(hasher.HashPassword(user, password)), ct);
        if (!hashed.Admitted)
        {
            return new Outcome { Busy = true };
        }

        user.PasswordHash = hashed.Value;

        // Account and role in one transaction: no account without its role.
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        IdentityResult created;
        try
        {
            created = await users.CreateAsync(user);
        }
        catch (DbUpdateException)
        {
            // Lost a race with a concurrent registration of the same name: the unique index decided.
            return new Outcome();
        }

        if (!created.Succeeded)
        {
            // Only the address is taken, on self-registration with mail: answer as for a new account, tell the owner.
            if (created.Errors.All(e => e.Code == "DuplicateEmail") && http.HttpContext is not null
                && await verification.TellOwnerAsync(user.Email, ct))
            {
                await tx.CommitAsync(ct);
                return new Outcome { User = user, StandIn = true };
            }

            if (created.Errors.Any(e => e.Code is "DuplicateUserName" or "DuplicateEmail"))
            {
                return new Outcome();
            }

            return new Outcome { Errors = new() { ["$"] = ["The account could not be created."] } };
        }

        // Self-registration from the API, or an operator on the CLI: the event commits with the roles.
        audit.Record(http.HttpContext is null ? Audit.AuditEvents.UserCreatedByAdmin : Audit.AuditEvents.Registered,
            Audit.AuditOutcomes.Success, $"user:{user.Id}", new { roles });
        var withRoles = await users.AddToRolesAsync(user, roles);
        if (!withRoles.Succeeded)
        {
            throw new InvalidOperationException("Assigning the initial roles failed: " + string.Join(", ", withRoles.Errors.Select(e => e.Code)));
        }

        if (http.HttpContext is not null)
        {
            await verification.StageAsync(user, ct); // the link commits with the account, or neither does
        }

        await tx.CommitAsync(ct);
        verification.Sent();
        return new Outcome { User = user };
    }

    internal static string? ValidateEmail(string? email)
    {
        if (string.IsNullOrEmpty(email))
        {
            return "An e-mail address is required.";
        }

        try
        {
            return email.Length <= 254 && EmailPattern().IsMatch(email) ? null : "The e-mail address is not valid.";
        }
        catch (RegexMatchTimeoutException)
        {
            // The timeout guards against pathological input; on a starved machine it may fire on a normal one.
            // Either way the answer is a 400, never a crash.
            return "The e-mail address is not valid.";
        }
    }

    // A deliberately simple allowlist: one @, no whitespace or control characters, a dot in the domain.
    [GeneratedRegex(@"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 100)]
    private static partial Regex EmailPattern();
}
