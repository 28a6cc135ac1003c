using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Portcullis.Accounts;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/verify-email?token=…</c>: the link from the sign-up mail. Opening it changes nothing (mail scanners follow
/// links); the button posts the token to <see cref="EmailVerification.ConfirmAsync"/>.
/// </summary>
public sealed class VerifyEmailModel(EmailVerification verification) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    public bool Done { get; private set; }

    public bool LinkInvalid { get; private set; }

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
        Done = await verification.ConfirmAsync(Token, ct);
        LinkInvalid = !Done;
        Token = null;
        if (LinkInvalid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }

        return Page();
    }
}
