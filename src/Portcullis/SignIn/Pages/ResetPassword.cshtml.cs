using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using Portcullis.Accounts;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/reset-password?token=…</c>: the link from the reset mail. The token only travels on to the form (the page sends
/// no referrer); it is checked when the form is posted, by <see cref="PasswordResets.ConfirmAsync"/>.
/// </summary>
public sealed class ResetPasswordModel(PasswordResets resets, IOptions<AccountOptions> accounts) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public string? Error { get; private set; }

    public bool Done { get; private set; }

    public bool LinkInvalid { get; private set; }

    public int MinPasswordLength => accounts.Value.MinPasswordLength;

    public IActionResult OnGet()
    {
        if (string.IsNullOrEmpty(Token))
        {
            LinkInvalid = true;
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }

        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var outcome = await resets.ConfirmAsync(Token, Password, ct);
        Password = null;
        switch (outcome.Status)
        {
            case PasswordResets.ConfirmStatus.Done:
                Done = true;
                Token = null;
                break;
            case PasswordResets.ConfirmStatus.WeakPassword:
                Response.StatusCode = StatusCodes.Status400BadRequest;
                Error = outcome.Error;
                break;
            case PasswordResets.ConfirmStatus.Busy:
                Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                Response.Headers.RetryAfter = "1";
                Error = "The server is busy. Try again in a moment.";
                break;
            case PasswordResets.ConfirmStatus.Unavailable:
                Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                LinkInvalid = true;
                break;
            default:
                Response.StatusCode = StatusCodes.Status400BadRequest;
                LinkInvalid = true;
                Token = null;
                break;
        }

        return Page();
    }
}
