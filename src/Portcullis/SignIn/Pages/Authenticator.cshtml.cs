using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;
using QRCoder;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/account/authenticator</c>: the enrolment started on the account page. Shows the key as a QR code (drawn on the
/// server, inline SVG: the page's policy allows no script, no inline style and images only from this origin) and as
/// text; the current password (AUTH-10: a stolen session alone must not put someone else's app on the account) and a
/// first right code turn the app on and shows ten recovery codes once. Every session of the user ends with
/// it; this browser's goes on as a new session.
/// </summary>
public sealed class AuthenticatorModel(
    UserManager<User> users, SecondFactor factors, SecondFactorThrottle throttle, BrowserSession sessions, AuditLog audit,
    Credentials credentials) : PageModel
{
    public const string Path = "/account/authenticator";

    /// <summary>The name the app shows next to the codes.</summary>
    public const string Issuer = "Portcullis";

    [BindProperty]
    public string? Code { get; set; }

    [BindProperty]
    public string? CurrentPassword { get; set; }

    /// <summary>The id of the field <see cref="Error"/> is about: marked invalid, described by it.</summary>
    public string? ErrorField { get; private set; }

    public string Key { get; private set; } = "";

    public string QrSvg { get; private set; } = "";

    public string? Error { get; private set; }

    public IReadOnlyList<string>? RecoveryCodes { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current || await users.FindByIdAsync(current.UserId.ToString()) is not { } user)
        {
            return SignInFirst();
        }

        return await ShowAsync(user) ?? BackToAccount();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (await BrowserSession.GetAsync(HttpContext) is not { } current || await users.FindByIdAsync(current.UserId.ToString()) is not { } user)
        {
            return SignInFirst();
        }

        if (await factors.PendingKeyAsync(user) is null)
        {
            return BackToAccount();
        }

        if (throttle.Throttle.Check(HttpContext.Connection.RemoteIpAddress, user.UserName) is { } wait)
        {
            await audit.WriteAsync(AuditEvents.SecondFactorThrottled, AuditOutcomes.Denied, $"user:{user.Id}", ct: ct);
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            return await FailAsync(user, StatusCodes.Status429TooManyRequests, $"Too many attempts. Try again in {seconds} seconds.");
        }

        var check = await credentials.CheckAsync(user.UserName, CurrentPassword, ct);
        if (check.Busy)
        {
            Response.Headers.RetryAfter = "1";
            return await FailAsync(user, StatusCodes.Status503ServiceUnavailable, "Busy. Try again in a moment.");
        }

        if (check.Valid is null)
        {
            throttle.Throttle.Failed(user.UserName);
            await audit.WriteAsync(AuditEvents.SecondFactorFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { method = "password", step = "enrolment" }, ct);
            return await FailAsync(user, StatusCodes.Status400BadRequest, "The current password is incorrect.", "current-password");
        }

        if (await factors.EnableAsync(user, Code, ct) is not { } codes)
        {
            throttle.Throttle.Failed(user.UserName);
            await audit.WriteAsync(AuditEvents.SecondFactorFailed, AuditOutcomes.Failure, $"user:{user.Id}", new { method = "totp", step = "enrolment" }, ct);
            return await FailAsync(user, StatusCodes.Status400BadRequest, "That code is not right. Check that the clock of your phone is correct and try again.", "code");
        }

        throttle.Throttle.Succeeded(user.UserName);

        // Every session ended with the change; this browser goes on, as the same sign-in (its methods unchanged).
        await sessions.StartAsync(user, previous: null, current.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries), ct);
        RecoveryCodes = codes;
        return Page();
    }

    private async Task<IActionResult?> ShowAsync(User user)
    {
        if (await factors.PendingKeyAsync(user) is not { } key)
        {
            return null;
        }

        Key = SecondFactor.FormatKey(key);
        QrSvg = Svg(SecondFactor.AuthenticatorUri(Issuer, user.UserName ?? "", key));
        return Page();
    }

    private async Task<IActionResult> FailAsync(User user, int status, string error, string? errorField = null)
    {
        Error = error;
        ErrorField = errorField;
        Code = CurrentPassword = null;
        Response.StatusCode = status;
        return await ShowAsync(user) ?? BackToAccount();
    }

    /// <summary>
    /// The QR code (QRCoder encodes; this draws each dark module as a square of one path) as SVG markup with no style
    /// attribute, sized by the stylesheet (<c>svg.qr</c>), dark on a light background in either colour scheme.
    /// </summary>
    internal static string Svg(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.M);
        var matrix = data.ModuleMatrix; // includes the quiet zone
        var size = matrix.Count;
        var path = new StringBuilder();
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                if (matrix[y][x])
                {
                    path.Append(CultureInfo.InvariantCulture, $"M{x} {y}h1v1h-1z");
                }
            }
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"""<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges" role="img" aria-label="QR code of the key"><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>""");
    }

    private RedirectResult SignInFirst() => Redirect(SignInServices.SignInPath + "?ReturnUrl=" + Uri.EscapeDataString(SignInServices.AccountPath));

    private LocalRedirectResult BackToAccount() => LocalRedirect(SignInServices.AccountPath);
}
