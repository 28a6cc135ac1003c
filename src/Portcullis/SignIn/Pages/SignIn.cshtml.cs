using System.Globalization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using Portcullis.Accounts;
using Portcullis.RateLimits;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/signin</c>: the password check of the token endpoint's password grant, with its throttle, its one answer for
/// every failure (unknown user, wrong password, disabled account: same message, status and work) and its audit trail;
/// then a new browser session and back to the local return URL.
/// </summary>
public sealed class SignInModel(
    Credentials credentials, LoginThrottle throttle, LoginRecords records, BrowserSession sessions,
    IOptions<AccountOptions> accounts, IOpenIddictApplicationManager applications, PendingSignIn pending) : PageModel
{
    public const string LoginFailed = "The username or password is incorrect.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string? Username { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public string? Error { get; private set; }

    public string? Message { get; private set; }

    public bool RegistrationOpen => accounts.Value.AllowRegistration;

    public string SignUpUrl => ReturnUrl is null ? SignUpModel.Path : QueryHelpers.AddQueryString(SignUpModel.Path, "ReturnUrl", ReturnUrl);

    public async Task<IActionResult> OnGetAsync([FromQuery(Name = "signed_out")] bool signedOut = false)
    {
        ReturnUrl = LocalReturnUrl(ReturnUrl);
        Username ??= LoginHint(ReturnUrl);
        Message = signedOut ? "You are signed out." : null;
        await AllowReturnTargetAsync(HttpContext, applications, ReturnUrl);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        ReturnUrl = LocalReturnUrl(ReturnUrl);
        await AllowReturnTargetAsync(HttpContext, applications, ReturnUrl);
        var ip = HttpContext.Connection.RemoteIpAddress;
        if (throttle.Check(ip, Username, out var stuffing) is { } wait)
        {
            await records.ThrottledAsync(ip, Username, stuffing, ct);
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return Fail(StatusCodes.Status429TooManyRequests, $"Too many sign-in attempts. Try again in {seconds} seconds.");
        }

        var (user, known, busy) = await credentials.CheckAsync(Username, Password, ct);
        if (busy)
        {
            records.Busy();
            Response.Headers.RetryAfter = "1";
            return Fail(StatusCodes.Status503ServiceUnavailable, "Sign-in is busy. Try again in a moment.");
        }

        if (user is null)
        {
            var bruteForce = throttle.Failed(Username);
            await records.FailedAsync(Username, known, clientId: null, bruteForce, ct);
            return Fail(StatusCodes.Status400BadRequest, LoginFailed);
        }

        throttle.Succeeded(Username);
        if (user.MustChangePassword)
        {
            await records.PasswordChangeRequiredAsync(user, clientId: null, ct);
            return Fail(StatusCodes.Status400BadRequest, "Your password must be changed before you can sign in: an operator required it. Change it with POST /api/accounts/password.");
        }

        if (accounts.Value.RequireVerifiedEmail && !user.EmailConfirmed)
        {
            await records.EmailNotVerifiedAsync(user, clientId: null, ct);
            return Fail(StatusCodes.Status400BadRequest, Credentials.EmailNotVerified);
        }

        if (user.TwoFactorEnabled)
        {
            // No session yet: the code page starts it once the second factor is right.
            pending.Begin(HttpContext, user, ReturnUrl);
            return LocalRedirect(SignInCodeModel.Path);
        }

        await sessions.StartAsync(user, await BrowserSession.GetAsync(HttpContext), ct);
        return LocalRedirect(ReturnUrl ?? SignInServices.AccountPath);
    }

    private PageResult Fail(int status, string error)
    {
        Response.StatusCode = status;
        Error = error;
        Password = null;
        return Page();
    }

    /// <summary>Only a path on this server (no scheme, no <c>//host</c>, no <c>/\host</c>); anything else is dropped.</summary>
    public static string? LocalReturnUrl(string? url) =>
        url is { Length: > 0 and <= 4096 } && url[0] == '/' && (url.Length == 1 || (url[1] != '/' && url[1] != '\\'))
            && !url.Any(char.IsControl)
            ? url
            : null;

    /// <summary>The <c>login_hint</c> of the authorization request the return URL continues, to fill in the name.</summary>
    private static string? LoginHint(string? returnUrl)
    {
        if (returnUrl is null || !returnUrl.StartsWith(TokenServices.AuthorizationPath + "?", StringComparison.Ordinal))
        {
            return null;
        }

        var query = QueryHelpers.ParseQuery(returnUrl[returnUrl.IndexOf('?', StringComparison.Ordinal)..]);
        return query.TryGetValue(OpenIddictConstants.Parameters.LoginHint, out var hint) && hint.ToString() is { Length: > 0 and <= 256 } value ? value : null;
    }

    /// <summary>
    /// A sign-in that continues an authorization request ends in a redirect to the client; the page's
    /// <c>form-action</c> allows that client's registered redirect URI (browsers check it on the redirects too).
    /// </summary>
    internal static async Task AllowReturnTargetAsync(HttpContext http, IOpenIddictApplicationManager applications, string? returnUrl)
    {
        if (returnUrl is null || !returnUrl.StartsWith(TokenServices.AuthorizationPath + "?", StringComparison.Ordinal))
        {
            return;
        }

        var query = QueryHelpers.ParseQuery(returnUrl[returnUrl.IndexOf('?', StringComparison.Ordinal)..]);
        if (query.TryGetValue(OpenIddictConstants.Parameters.ClientId, out var clientId)
            && query.TryGetValue(OpenIddictConstants.Parameters.RedirectUri, out var redirect)
            && Uri.TryCreate(redirect.ToString(), UriKind.Absolute, out var uri)
            && await applications.FindByClientIdAsync(clientId.ToString(), http.RequestAborted) is { } application
            && await applications.ValidateRedirectUriAsync(application, redirect.ToString(), http.RequestAborted))
        {
            PageSecurity.AllowFormTarget(http, uri);
        }
    }
}
