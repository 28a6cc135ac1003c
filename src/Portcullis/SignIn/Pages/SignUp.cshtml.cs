using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Accounts;

namespace Portcullis.SignIn.Pages;

/// <summary><c>/signup</c>: self-registration (when <c>Accounts:AllowRegistration</c>) with the API's rules, then signed in.</summary>
public sealed class SignUpModel(
    AccountCreator creator, BrowserSession sessions, IOptions<AccountOptions> accounts, IOpenIddictApplicationManager applications,
    EmailVerification verification) : PageModel
{
    public const string Path = "/signup";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public string? Username { get; set; }

    [BindProperty]
    public string? Email { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public string? Error { get; private set; }

    /// <summary>With mail: the account waits for its address to be confirmed (the same page when the address was taken).</summary>
    public bool CheckMail { get; private set; }

    public Dictionary<string, string[]> Errors { get; private set; } = [];

    /// <summary>
    /// The field the keyboard starts in: the first one in error (marked <c>aria-invalid</c>, its message in its
    /// description), so a person corrects it at once; the username on a fresh form.
    /// </summary>
    public string FocusField => Fields.FirstOrDefault(Errors.ContainsKey) ?? "username";

    private static readonly string[] Fields = ["username", "email", "password"];

    public bool RegistrationOpen => accounts.Value.AllowRegistration;

    public int MinPasswordLength => accounts.Value.MinPasswordLength;

    public string SignInUrl => ReturnUrl is null ? SignInServices.SignInPath : QueryHelpers.AddQueryString(SignInServices.SignInPath, "ReturnUrl", ReturnUrl);

    public async Task<IActionResult> OnGetAsync()
    {
        ReturnUrl = SignInModel.LocalReturnUrl(ReturnUrl);
        await SignInModel.AllowReturnTargetAsync(HttpContext, applications, ReturnUrl);
        if (!RegistrationOpen)
        {
            Response.StatusCode = StatusCodes.Status403Forbidden;
        }

        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        ReturnUrl = SignInModel.LocalReturnUrl(ReturnUrl);
        await SignInModel.AllowReturnTargetAsync(HttpContext, applications, ReturnUrl);
        if (!RegistrationOpen)
        {
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }

        var outcome = await creator.CreateAsync(Username ?? "", Email ?? "", Password ?? "", [Roles.User], ct);
        Password = null;
        // With mail, a new account and a taken address end on the same page: sign-up does not reveal the address.
        if (outcome.User is not null && (outcome.StandIn || verification.Available))
        {
            CheckMail = true;
            return Page();
        }

        if (outcome.User is { } user)
        {
            await sessions.StartAsync(user, await BrowserSession.GetAsync(HttpContext), ct);
            return LocalRedirect(ReturnUrl ?? SignInServices.AccountPath);
        }

        Response.StatusCode = outcome.Busy ? StatusCodes.Status503ServiceUnavailable : outcome.Errors is null ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest;
        Errors = outcome.Errors ?? [];
        Error = outcome.Busy ? "Sign-up is busy. Try again in a moment."
            : outcome.Errors is null ? "The username or e-mail address is not available."
            // An error of the request as a whole (not of one field) is the message itself.
            : Errors.TryGetValue("$", out var general) ? string.Join(" ", general)
            : "Please correct the fields below.";
        return Page();
    }
}
