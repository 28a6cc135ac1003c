using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/account</c>: the signed-in person's profile, password change, sessions and the applications they allowed,
/// each revocable, and sign-out. The same services and audit events as the <c>/api/me</c> endpoints.
/// </summary>
public sealed class AccountModel(
    BrowserSession browser, UserSessions sessions, UserManager<User> users, Credentials credentials, PasswordPolicy passwords,
    SessionTerminator terminator, IOpenIddictAuthorizationManager authorizations, IOpenIddictApplicationManager applications,
    PortcullisDb db, AuditLog audit, SecondFactor factors, SecondFactorThrottle factorThrottle) : PageModel
{
    public sealed record Consent(string Id, string Client, IReadOnlyList<string> Scopes);

    /// <summary>A live session: this browser, another browser, or an application's (a password-grant login).</summary>
    public sealed record SessionRow(string Id, DateTimeOffset? Created, string Kind);

    public string Username { get; private set; } = "";

    public string? Email { get; private set; }

    public DateTimeOffset SignedInAt { get; private set; }

    public string CurrentSessionId { get; private set; } = "";

    public IReadOnlyList<SessionRow> Sessions { get; private set; } = [];

    public IReadOnlyList<Consent> Consents { get; private set; } = [];

    public string? Message { get; private set; }

    public string? Error { get; private set; }

    /// <summary>The id of the field <see cref="Error"/> is about, if any: marked invalid, described by it, focused.</summary>
    public string? ErrorField { get; private set; }

    [BindProperty]
    public string? CurrentPassword { get; set; }

    [BindProperty]
    public string? NewPassword { get; set; }

    [BindProperty]
    public string? SessionId { get; set; }

    /// <summary>The password or an authenticator code, to turn the authenticator app off (AUTH-10).</summary>
    [BindProperty]
    public string? Proof { get; set; }

    public bool TwoFactorEnabled { get; private set; }

    public int RecoveryCodesLeft { get; private set; }

    [BindProperty]
    public string? ConsentId { get; set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) =>
        await BrowserSession.GetAsync(HttpContext) is { } current ? await ShowAsync(current, ct) : SignInFirst();

    public async Task<IActionResult> OnPostSignOutAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is { } current)
        {
            await browser.EndAsync(HttpContext, current, ct);
        }

        return LocalRedirect(SignInServices.SignInPath + "?signed_out=true");
    }

    public async Task<IActionResult> OnPostEndSessionAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current)
        {
            return SignInFirst();
        }

        if (SessionId == current.SessionId)
        {
            return await OnPostSignOutAsync(ct);
        }

        if (SessionId is null || !await sessions.EndAsync(current.UserId, SessionId, ct))
        {
            return await ShowAsync(current, ct, error: "That session was not found.", status: StatusCodes.Status404NotFound);
        }

        return await ShowAsync(current, ct, message: "The session was ended.");
    }

    public async Task<IActionResult> OnPostRevokeConsentAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current)
        {
            return SignInFirst();
        }

        if (ConsentId is null || await authorizations.FindByIdAsync(ConsentId, ct) is not { } consent
            || await authorizations.GetSubjectAsync(consent, ct) != current.UserId.ToString()
            || !await authorizations.HasTypeAsync(consent, AuthorizationTypes.Permanent, ct))
        {
            return await ShowAsync(current, ct, error: "That consent was not found.", status: StatusCodes.Status404NotFound);
        }

        // The consent goes, and with it the client's refresh tokens for this user: it must ask again. One UPDATE for
        // the tokens (OpenIddict's TryRevokeAsync swallows a failure, and PostgreSQL cannot write while a query over
        // the same tokens is still being read).
        var applicationId = await authorizations.GetApplicationIdAsync(consent, ct);
        audit.Record(AuditEvents.ConsentRevoked, AuditOutcomes.Success, $"client:{applicationId}", actor: $"user:{current.UserId}");
        if (!await authorizations.TryRevokeAsync(consent, ct))
        {
            return await ShowAsync(current, ct, error: "The consent could not be revoked. Try again.", status: StatusCodes.Status409Conflict);
        }

        if (applicationId is not null)
        {
            var subject = current.UserId.ToString();
            var stamp = Guid.NewGuid().ToString();
            await db.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>()
                .Where(t => t.Subject == subject && t.Application!.Id == applicationId && t.Status == Statuses.Valid)
                .ExecuteUpdateAsync(set => set
                    .SetProperty(t => t.Status, Statuses.Revoked)
                    .SetProperty(t => t.ConcurrencyToken, stamp), ct);
        }

        return await ShowAsync(current, ct, message: "Access was revoked.");
    }

    public async Task<IActionResult> OnPostPasswordAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current || await users.FindByIdAsync(current.UserId.ToString()) is not { } user)
        {
            return SignInFirst();
        }

        var check = await credentials.CheckAsync(user.UserName, CurrentPassword, ct);
        if (check.Busy)
        {
            return await ShowAsync(current, ct, error: "Busy. Try again in a moment.", status: StatusCodes.Status503ServiceUnavailable);
        }

        if (check.Valid is null)
        {
            await audit.WriteAsync(AuditEvents.PasswordChangeFailed, AuditOutcomes.Failure, $"user:{user.Id}", ct: ct);
            return await ShowAsync(current, ct, error: "The current password is incorrect.", status: StatusCodes.Status400BadRequest, errorField: "current-password");
        }

        if (passwords.Validate(NewPassword, user.UserName) is { } problem)
        {
            return await ShowAsync(current, ct, error: problem, status: StatusCodes.Status400BadRequest, errorField: "new-password");
        }

        var hash = await credentials.HashAsync(user, NewPassword!, ct);
        if (!hash.Admitted)
        {
            return await ShowAsync(current, ct, error: "Busy. Try again in a moment.", status: StatusCodes.Status503ServiceUnavailable);
        }

        audit.Record(AuditEvents.PasswordChanged, AuditOutcomes.Success, $"user:{user.Id}", new { sessionsEnded = "all" });
        await terminator.EndAllSessionsAsync(user, () =>
        {
            user.PasswordHash = hash.Value;
            return users.UpdateAsync(user);
        }, ct);
        await HttpContext.SignOutAsync(BrowserSession.Scheme);
        return LocalRedirect(SignInServices.SignInPath + "?signed_out=true");
    }

    public async Task<IActionResult> OnPostStartAuthenticatorAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current || await users.FindByIdAsync(current.UserId.ToString()) is not { } user)
        {
            return SignInFirst();
        }

        if (await factors.StartEnrolmentAsync(user) is null)
        {
            return await ShowAsync(current, ct, error: "The authenticator app is already on. Turn it off first to set up another.", status: StatusCodes.Status409Conflict);
        }

        return LocalRedirect(AuthenticatorModel.Path);
    }

    public async Task<IActionResult> OnPostDisableAuthenticatorAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current || await users.FindByIdAsync(current.UserId.ToString()) is not { } user)
        {
            return SignInFirst();
        }

        if (!user.TwoFactorEnabled)
        {
            return await ShowAsync(current, ct, error: "The authenticator app is not on.", status: StatusCodes.Status409Conflict);
        }

        if (factorThrottle.Throttle.Check(HttpContext.Connection.RemoteIpAddress, user.UserName) is { } wait)
        {
            await audit.WriteAsync(AuditEvents.SecondFactorThrottled, AuditOutcomes.Denied, $"user:{user.Id}", ct: ct);
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return await ShowAsync(current, ct, error: $"Too many attempts. Try again in {seconds} seconds.", status: StatusCodes.Status429TooManyRequests, errorField: "authenticator-proof");
        }

        // Six digits are a code (a password has at least 15 characters); anything else is the password.
        var byCode = SecondFactor.IsAuthenticatorCode(Proof);
        bool valid;
        if (byCode)
        {
            valid = await factors.VerifyCodeAsync(user, Proof);
        }
        else
        {
            var check = await credentials.CheckAsync(user.UserName, Proof, ct);
            if (check.Busy)
            {
                return await ShowAsync(current, ct, error: "Busy. Try again in a moment.", status: StatusCodes.Status503ServiceUnavailable);
            }

            valid = check.Valid is not null;
        }

        if (!valid)
        {
            factorThrottle.Throttle.Failed(user.UserName);
            await audit.WriteAsync(AuditEvents.SecondFactorFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { method = byCode ? "totp" : "password", step = "disable" }, ct);
            return await ShowAsync(current, ct, error: "The password or code is incorrect.", status: StatusCodes.Status400BadRequest, errorField: "authenticator-proof");
        }

        factorThrottle.Throttle.Succeeded(user.UserName);
        await factors.DisableAsync(user, byCode ? "code" : "password", ct);
        await HttpContext.SignOutAsync(BrowserSession.Scheme);
        return LocalRedirect(SignInServices.SignInPath + "?signed_out=true");
    }

    private RedirectResult SignInFirst() => Redirect(SignInServices.SignInPath + "?ReturnUrl=" + Uri.EscapeDataString(SignInServices.AccountPath));

    private async Task<IActionResult> ShowAsync(BrowserSession.Current current, CancellationToken ct, string? message = null, string? error = null, int status = StatusCodes.Status200OK, string? errorField = null)
    {
        CurrentPassword = NewPassword = Proof = null;
        Message = message;
        Error = error;
        ErrorField = errorField;
        Response.StatusCode = status;
        var user = await users.FindByIdAsync(current.UserId.ToString());
        Username = user?.UserName ?? current.Username;
        Email = user?.Email;
        TwoFactorEnabled = user?.TwoFactorEnabled ?? false;
        RecoveryCodesLeft = user is { TwoFactorEnabled: true } ? await factors.RecoveryCodesLeftAsync(user) : 0;
        SignedInAt = DateTimeOffset.FromUnixTimeSeconds(current.AuthTime);
        CurrentSessionId = current.SessionId;

        var all = await sessions.ListAsync(current.UserId, ct);
        var consents = new List<Consent>();
        var live = new List<SessionRow>();
        foreach (var session in all)
        {
            var authorization = await authorizations.FindByIdAsync(session.Id, ct);
            if (authorization is not null && await authorizations.HasTypeAsync(authorization, AuthorizationTypes.Permanent, ct))
            {
                var application = session.Client is null ? null : await applications.FindByIdAsync(session.Client, ct);
                consents.Add(new Consent(session.Id,
                    application is null ? "(removed)" : await applications.GetDisplayNameAsync(application, ct) ?? "(unnamed)",
                    [.. await authorizations.GetScopesAsync(authorization, ct)]));
            }
            else
            {
                var application = session.Client is null ? null : await applications.FindByIdAsync(session.Client, ct);
                var kind = session.Id == current.SessionId ? "This browser"
                    : application is null ? "Browser"
                    : "Application: " + (await applications.GetDisplayNameAsync(application, ct) ?? "(unnamed)");
                live.Add(new SessionRow(session.Id, session.Created, kind));
            }
        }

        Sessions = live;
        Consents = consents;
        return Page();
    }
}
