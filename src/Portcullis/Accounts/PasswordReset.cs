using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Portcullis.Email;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// <c>POST /api/accounts/password-reset</c> sends a reset link to the address if an account has it, and answers the
/// same either way; <c>POST /api/accounts/password-reset/confirm</c> sets a new password with the link's token.
/// The hosted pages (/forgot-password, /reset-password) call the same <see cref="PasswordResets"/>.
/// </summary>
public static class PasswordReset
{
    public sealed record Request([property: PiiData] string Email);

    public sealed record Confirmation([property: SecretData] string Token, [property: SecretData] string Password);

    public sealed record Accepted(string Message);

    public static async Task<Results<Accepted<Accepted>, ValidationProblem, ProblemHttpResult>> RequestAsync(HttpContext http, PasswordResets resets)
    {
        var (request, problem) = await JsonBody.ReadAsync<Request>(http);
        if (problem is not null)
        {
            return problem as ValidationProblem is { } v ? v : (ProblemHttpResult)problem;
        }

        return await resets.RequestAsync(request!.Email, http.RequestAborted) switch
        {
            PasswordResets.RequestOutcome.Unavailable => Unavailable(),
            PasswordResets.RequestOutcome.InvalidAddress => JsonBody.Invalid("email", "The e-mail address is not valid."),
            _ => TypedResults.Accepted((string?)null, new Accepted(PasswordResets.SentMessage)),
        };
    }

    public static async Task<Results<NoContent, ValidationProblem, ProblemHttpResult>> ConfirmAsync(HttpContext http, PasswordResets resets)
    {
        var (request, problem) = await JsonBody.ReadAsync<Confirmation>(http);
        if (problem is not null)
        {
            return problem as ValidationProblem is { } v ? v : (ProblemHttpResult)problem;
        }

        var outcome = await resets.ConfirmAsync(request!.Token, request.Password, http.RequestAborted);
        return outcome.Status switch
        {
            PasswordResets.ConfirmStatus.Done => TypedResults.NoContent(),
            PasswordResets.ConfirmStatus.Busy => resets.Busy(http),
            PasswordResets.ConfirmStatus.Unavailable => Unavailable(),
            PasswordResets.ConfirmStatus.WeakPassword => JsonBody.Invalid("password", outcome.Error!),
            _ => JsonBody.Invalid("token", PasswordResets.InvalidLink),
        };
    }

    private static ProblemHttpResult Unavailable() => TypedResults.Problem(
        statusCode: StatusCodes.Status503ServiceUnavailable, type: ProblemTypes.Unavailable,
        title: "Password reset by e-mail is not available: this server has no outgoing mail configured (Email:Smtp:Host).");
}

/// <summary>Issues and redeems reset tokens: 256 random bits, only the SHA-256 stored, single-use, 15 minutes, bound to the stamp.</summary>
public sealed class PasswordResets(
    PortcullisDb db, UserManager<User> users, Outbox outbox, MailLinks links, TimeProvider time, Audit.AuditLog audit,
    PasswordPolicy passwords, Argon2PasswordHasher hasher, PasswordHashingLimiter hashing, SessionTerminator sessions)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Every request answers no sooner than this after it arrived, for a known address or not: the few milliseconds
    /// the known path spends writing the token and the message cannot tell the two apart (AUTH-07).
    /// </summary>
    public static readonly TimeSpan ResponseFloor = TimeSpan.FromMilliseconds(250);

    public const string ResetPath = "/reset-password";
    public const string SentMessage = "If an account has this address, a link to choose a new password is on its way to it. The link works once, for 15 minutes.";
    public const string InvalidLink = "The reset link is invalid, already used or expired. Ask for a new one.";

    public enum RequestOutcome { Accepted, InvalidAddress, Unavailable }

    public enum ConfirmStatus { Done, InvalidToken, WeakPassword, Busy, Unavailable }

    public sealed record ConfirmOutcome(ConfirmStatus Status, string? Error = null);

    public bool Available => outbox.Available;

    public ProblemHttpResult Busy(HttpContext http) => hashing.Busy(http);

    public async Task<RequestOutcome> RequestAsync(string? email, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        if (!outbox.Available)
        {
            return RequestOutcome.Unavailable;
        }

        if (AccountCreator.ValidateEmail(email) is not null)
        {
            return RequestOutcome.InvalidAddress; // about the input only: says nothing of any account
        }

        // The same work for a known and an unknown address: one lookup, one token and its hash, one transaction with
        // one audit event; only what the transaction holds differs. Then the floor.
        var normalized = users.NormalizeEmail(email);
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.NormalizedEmail == normalized, ct);
        var (token, hash) = NewToken();
        if (user is { IsDisabled: false })
        {
            var now = time.GetUtcNow();
            db.AccountTokens.Add(new AccountToken
            {
                UserId = user.Id, Purpose = AccountTokenPurposes.Reset, Hash = hash, SecurityStamp = user.SecurityStamp ?? "",
                CreatedAt = now, ExpiresAt = now + Lifetime,
            });
            outbox.Stage(user.Email!, "Choose a new password", ResetMail(user.UserName!, links.For(ResetPath, token)));
            audit.Record(Audit.AuditEvents.PasswordResetRequested, Audit.AuditOutcomes.Success, $"user:{user.Id}");
        }
        else
        {
            audit.Record(Audit.AuditEvents.PasswordResetRequested, Audit.AuditOutcomes.Failure, audit.PersonalName(normalized), new { reason = "no_account" });
        }

        await db.SaveChangesAsync(ct);
        outbox.Wake();
        var remaining = ResponseFloor - time.GetElapsedTime(started);
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, time, ct);
        }

        return RequestOutcome.Accepted;
    }

    public async Task<ConfirmOutcome> ConfirmAsync(string? token, string? password, CancellationToken ct)
    {
        if (!outbox.Available)
        {
            return new(ConfirmStatus.Unavailable);
        }

        var now = time.GetUtcNow();
        var tokenHash = string.IsNullOrEmpty(token) || token.Length > 128 ? null : Hash(token);
        var row = tokenHash is null ? null
            : await db.AccountTokens.AsNoTracking().FirstOrDefaultAsync(t => t.Hash == tokenHash && t.Purpose == AccountTokenPurposes.Reset, ct);
        var user = row is null ? null : await users.FindByIdAsync(row.UserId.ToString());
        // Used, expired (at the instant of expiry too), for a disabled account, or issued before the account's security
        // stamp last changed (a password change, a reset, "log out everywhere"): one answer for all of them.
        if (row is null || user is null || row.UsedAt is not null || now >= row.ExpiresAt || user.IsDisabled
            || !string.Equals(row.SecurityStamp, user.SecurityStamp, StringComparison.Ordinal))
        {
            await audit.WriteAsync(Audit.AuditEvents.PasswordResetFailed, Audit.AuditOutcomes.Failure,
                user is null ? null : $"user:{user.Id}", new { reason = row is null ? "unknown_token" : "used_expired_or_stale" }, ct);
            return new(ConfirmStatus.InvalidToken);
        }

        if (passwords.Validate(password, user.UserName) is { } weak)
        {
            return new(ConfirmStatus.WeakPassword, weak);
        }

        var hashed = await hashing.RunAsync(() => Task.FromResult(hasher.HashPassword(user, password!)), ct);
        if (!hashed.Admitted)
        {
            return new(ConfirmStatus.Busy);
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        // Single use under concurrency: only the request that marks the row wins.
        if (await db.AccountTokens.Where(t => t.Id == row.Id && t.UsedAt == null).ExecuteUpdateAsync(s => s.SetProperty(t => t.UsedAt, now), ct) != 1)
        {
            return new(ConfirmStatus.InvalidToken);
        }

        audit.Record(Audit.AuditEvents.PasswordReset, Audit.AuditOutcomes.Success, $"user:{user.Id}", new { sessionsEnded = "all" });
        await sessions.EndAllSessionsAsync(user, () =>
        {
            user.PasswordHash = hashed.Value;
            user.MustChangePassword = false; // the owner just chose this password
            return users.UpdateAsync(user);
        }, ct);
        await tx.CommitAsync(ct);
        return new(ConfirmStatus.Done);
    }

    internal static (string Token, string Hash) NewToken()
    {
        var token = Microsoft.AspNetCore.WebUtilities.WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        return (token, Hash(token));
    }

    internal static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string ResetMail(string username, string link) =>
        $"""
        Hello {username},

        Someone (we hope you) asked to choose a new password for your account. Open this link within 15 minutes to do so:

        {link}

        The link works once. Using it signs you out everywhere. If you did not ask for this, ignore this message: your password stays as it is.
        """;
}
