using System.Globalization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/signin/code</c>: the second step of a sign-in for an account with the authenticator app on. The password was
/// right (<see cref="PendingSignIn"/> says so); a code from the app, or a recovery code, starts the browser session.
/// Wrong codes are throttled per account and per IP like passwords (<see cref="SecondFactorThrottle"/>, and the
/// page shares the credential endpoints' per-IP limit), each is an audit event; a code works once.
/// </summary>
public sealed class SignInCodeModel(
    PendingSignIn pending, UserManager<User> users, SecondFactor factors, SecondFactorThrottle throttle,
    BrowserSession sessions, AuditLog audit, IOpenIddictApplicationManager applications) : PageModel
{
    public const string Path = "/signin/code";
    public const string CodeFailed = "The code is incorrect or was already used.";

    [BindProperty]
    public string? Code { get; set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync() =>
        await PendingUserAsync() is { } pendingUser ? await ShowAsync(pendingUser.State) : StartAgain();

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (await PendingUserAsync() is not { } pendingUser)
        {
            return StartAgain();
        }

        var (state, user) = pendingUser;

        await SignInModel.AllowReturnTargetAsync(HttpContext, applications, state.ReturnUrl);
        var ip = HttpContext.Connection.RemoteIpAddress;
        if (throttle.Throttle.Check(ip, user.UserName) is { } wait)
        {
            await audit.WriteAsync(AuditEvents.SecondFactorThrottled, AuditOutcomes.Denied, $"user:{user.Id}", ct: ct);
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Fail(StatusCodes.Status429TooManyRequests, $"Too many attempts. Try again in {seconds} seconds.");
        }

        var authenticator = SecondFactor.IsAuthenticatorCode(Code);
        var accepted = authenticator
            ? await factors.VerifyCodeAsync(user, Code)
            : await factors.RedeemRecoveryCodeAsync(user, Code, ct);
        if (!accepted)
        {
            throttle.Throttle.Failed(user.UserName);
            await audit.WriteAsync(AuditEvents.SecondFactorFailed, AuditOutcomes.Failure, $"user:{user.Id}",
                new { method = authenticator ? "totp" : "recovery_code", step = "sign-in" }, ct);
            return Fail(StatusCodes.Status400BadRequest, CodeFailed);
        }

        throttle.Throttle.Succeeded(user.UserName);
        PendingSignIn.End(HttpContext);
        string[] methods = authenticator
            ? [BrowserSession.AuthenticationMethods.Password, BrowserSession.AuthenticationMethods.OneTimePassword, BrowserSession.AuthenticationMethods.MultiFactor]
            : [BrowserSession.AuthenticationMethods.Password, BrowserSession.AuthenticationMethods.RecoveryCode, BrowserSession.AuthenticationMethods.MultiFactor];
        await sessions.StartAsync(user, await BrowserSession.GetAsync(HttpContext), methods, ct);
        return LocalRedirect(state.ReturnUrl ?? SignInServices.AccountPath);
    }

    /// <summary>The pending sign-in and its account, while both still hold: not expired, the account unchanged and active.</summary>
    private async Task<(PendingSignIn.State State, User User)?> PendingUserAsync()
    {
        if (pending.Read(HttpContext) is not { } state
            || await users.FindByIdAsync(state.UserId.ToString()) is not { } user
            || user.IsDisabled || !user.TwoFactorEnabled || user.SecurityStamp != state.Stamp)
        {
            return null;
        }

        return (state, user);
    }

    private async Task<PageResult> ShowAsync(PendingSignIn.State state)
    {
        await SignInModel.AllowReturnTargetAsync(HttpContext, applications, state.ReturnUrl);
        return Page();
    }

    private RedirectResult StartAgain()
    {
        PendingSignIn.End(HttpContext);
        return Redirect(SignInServices.SignInPath);
    }

    private PageResult Fail(int status, string error)
    {
        Response.StatusCode = status;
        Error = error;
        Code = null;
        return Page();
    }
}
