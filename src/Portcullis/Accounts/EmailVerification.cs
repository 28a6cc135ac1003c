using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portcullis.Email;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// Verification of a self-registered address: a single-use link (only its SHA-256 stored, purpose <c>verify</c>,
/// 24 hours, bound to the security stamp) sent with the account's creation; <c>POST /api/accounts/verify-email</c>
/// and the /verify-email page redeem it. Sign-up with an address another account has tells that account's owner.
/// </summary>
public sealed class EmailVerification(
    PortcullisDb db, UserManager<User> users, Outbox outbox, MailLinks links, TimeProvider time, Audit.AuditLog audit)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);
    public const string VerifyPath = "/verify-email";
    public const string InvalidLink = "The verification link is invalid, already used or expired.";

    public sealed record Request([property: SecretData] string Token);

    public bool Available => outbox.Available;

    /// <summary>Stages the token and the message in the caller's transaction; nothing without mail.</summary>
    internal async Task StageAsync(User user, CancellationToken ct)
    {
        if (!outbox.Available)
        {
            return;
        }

        var (token, hash) = PasswordResets.NewToken();
        var now = time.GetUtcNow();
        db.AccountTokens.Add(new AccountToken
        {
            UserId = user.Id, Purpose = AccountTokenPurposes.Verify, Hash = hash, SecurityStamp = user.SecurityStamp ?? "",
            CreatedAt = now, ExpiresAt = now + Lifetime,
        });
        outbox.Stage(user.Email!, "Confirm your e-mail address",
            $"""
            Hello {user.UserName},

            Please confirm that this is your e-mail address by opening this link within 24 hours:

            {links.For(VerifyPath, token)}

            If you did not create an account, ignore this message.
            """);
        await db.SaveChangesAsync(ct);
    }

    /// <summary>Mails the owner of <paramref name="email"/> that someone tried to register with it; false without mail.</summary>
    internal async Task<bool> TellOwnerAsync(string? email, CancellationToken ct)
    {
        var normalized = users.NormalizeEmail(email);
        if (!outbox.Available || await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.NormalizedEmail == normalized, ct) is not { } owner)
        {
            return false;
        }

        db.ChangeTracker.Clear(); // the failed create left nothing to save but may have tracked the stand-in
        outbox.Stage(owner.Email!, "Someone tried to create an account with your address",
            $"""
            Hello {owner.UserName},

            Someone tried to create a new account with this e-mail address. It already belongs to your account, so no
            second account was created. If this was you, sign in instead (or use "Forgot password?"). Otherwise ignore
            this message: nothing changed.
            """);
        audit.Record(Audit.AuditEvents.RegistrationEmailTaken, Audit.AuditOutcomes.Failure, $"user:{owner.Id}");
        await db.SaveChangesAsync(ct);
        return true;
    }

    /// <summary>Wakes the sender after the caller committed.</summary>
    internal void Sent()
    {
        if (outbox.Available)
        {
            outbox.Wake();
        }
    }

    public async Task<bool> ConfirmAsync(string? token, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var tokenHash = string.IsNullOrEmpty(token) || token.Length > 128 ? null : PasswordResets.Hash(token);
        var row = tokenHash is null ? null
            : await db.AccountTokens.AsNoTracking().FirstOrDefaultAsync(t => t.Hash == tokenHash && t.Purpose == AccountTokenPurposes.Verify, ct);
        var user = row is null ? null : await users.FindByIdAsync(row.UserId.ToString());
        if (row is null || user is null || row.UsedAt is not null || now >= row.ExpiresAt
            || !string.Equals(row.SecurityStamp, user.SecurityStamp, StringComparison.Ordinal))
        {
            return false;
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (await db.AccountTokens.Where(t => t.Id == row.Id && t.UsedAt == null).ExecuteUpdateAsync(s => s.SetProperty(t => t.UsedAt, now), ct) != 1)
        {
            return false;
        }

        user.EmailConfirmed = true;
        audit.Record(Audit.AuditEvents.EmailVerified, Audit.AuditOutcomes.Success, $"user:{user.Id}");
        await users.UpdateAsync(user);
        await tx.CommitAsync(ct);
        return true;
    }

    public static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> HandleAsync(HttpContext http, EmailVerification verification)
    {
        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem as ValidationProblem is { } v ? v : (ProblemHttpResult)problem;
        }

        return await verification.ConfirmAsync(request!.Token, http.RequestAborted)
            ? TypedResults.NoContent()
            : JsonBody.Invalid("token", InvalidLink);
    }
}
