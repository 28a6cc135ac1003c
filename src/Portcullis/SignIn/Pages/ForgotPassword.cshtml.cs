using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Portcullis.Accounts;

namespace Portcullis.SignIn.Pages;

/// <summary><c>/forgot-password</c>: asks <see cref="PasswordResets"/> for a link; the same page follows whether or not an account has the address.</summary>
public sealed class ForgotPasswordModel(PasswordResets resets) : PageModel
{
    public const string Path = "/forgot-password";

    [BindProperty]
    public string? Email { get; set; }

    public bool Sent { get; private set; }

    public string? Error { get; private set; }

    public bool Available => resets.Available;

    public IActionResult OnGet()
    {
        if (!Available)
        {
            Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        }

        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        switch (await resets.RequestAsync(Email, ct))
        {
            case PasswordResets.RequestOutcome.Unavailable:
                Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                break;
            case PasswordResets.RequestOutcome.InvalidAddress:
                Response.StatusCode = StatusCodes.Status400BadRequest;
                Error = "The e-mail address is not valid.";
                break;
            default:
                Sent = true;
                Email = null;
                break;
        }

        return Page();
    }
}
