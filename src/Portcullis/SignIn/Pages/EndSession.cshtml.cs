using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Access;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/connect/endsession</c> (OpenID Connect RP-Initiated Logout 1.0) after OpenIddict has validated the request
/// (the <c>id_token_hint</c>, a registered <c>post_logout_redirect_uri</c>). An ID token of this browser's session
/// signs out at once; otherwise the person confirms, so that a link on another site cannot sign them out. Signing
/// out ends the browser session and every token issued under it; then back to the client, with its <c>state</c>.
/// </summary>
public sealed class EndSessionModel(BrowserSession sessions, IOpenIddictApplicationManager applications) : PageModel
{
    public string? Error { get; private set; }

    public bool SignedOut { get; private set; }

    public string? ClientName { get; private set; }

    public IReadOnlyList<(string Name, string Value)> Parameters { get; private set; } = [];

    public Task<IActionResult> OnGetAsync(CancellationToken ct) => HandleAsync(decision: null, ct);

    public Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision, CancellationToken ct) => HandleAsync(decision ?? "", ct);

    private async Task<IActionResult> HandleAsync(string? decision, CancellationToken ct)
    {
        if (HttpContext.GetOpenIddictServerResponse() is { Error: { } error } response)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            Error = response.ErrorDescription ?? error;
            return Page();
        }

        var request = HttpContext.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenIddict request is missing.");

        // OpenIddict treats an invalid id_token_hint as absent; a forged or altered one is refused here, before anything
        // is ended or anyone redirected (RP-Initiated Logout §2: the OP validates the hint).
        // (Authentication answers an empty principal for an invalid hint.)
        var hint = string.IsNullOrEmpty(request.IdTokenHint) ? null
            : (await HttpContext.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme)).Principal;
        if (!string.IsNullOrEmpty(request.IdTokenHint) && (hint?.Identity?.IsAuthenticated != true || hint.GetClaim(Claims.Subject) is null))
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            Error = "The id_token_hint is not a valid ID token issued here.";
            return Page();
        }

        var current = await BrowserSession.GetAsync(HttpContext);
        if (current is null)
        {
            return Done(request, hint); // nothing to end here
        }

        if (decision == "stay")
        {
            return LocalRedirect(SignInServices.AccountPath);
        }

        var ofThisSession = hint?.GetClaim(PortcullisClaims.SessionId) == current.SessionId;
        if (ofThisSession || decision == "signout")
        {
            await sessions.EndAsync(HttpContext, current, ct);
            return Done(request, hint);
        }

        var clientId = request.ClientId ?? hint?.GetPresenters().FirstOrDefault();
        if (clientId is not null && await applications.FindByClientIdAsync(clientId, ct) is { } application)
        {
            ClientName = await applications.GetLocalizedDisplayNameAsync(application, ct);
        }

        Parameters = [.. from parameter in request.GetParameters()
                         where parameter.Key is not ("decision" or "__af")
                         let values = (Microsoft.Extensions.Primitives.StringValues)parameter.Value
                         from value in values
                         where value is not null
                         select (parameter.Key, value)];
        if (request.PostLogoutRedirectUri is { } redirect && Uri.TryCreate(redirect, UriKind.Absolute, out var uri))
        {
            PageSecurity.AllowFormTarget(HttpContext, uri);
        }

        return Page();
    }

    /// <summary>
    /// To the client's registered post-logout URI (OpenIddict adds <c>state</c>) when the request says which client it
    /// is — a valid <c>id_token_hint</c> or a <c>client_id</c>; a bare <c>post_logout_redirect_uri</c> could be any
    /// client's, so then (as without one) the signed-out page (RP-Initiated Logout §2-3).
    /// </summary>
    private IActionResult Done(OpenIddictRequest request, System.Security.Claims.ClaimsPrincipal? hint)
    {
        if (string.IsNullOrEmpty(request.PostLogoutRedirectUri) || (hint is null && string.IsNullOrEmpty(request.ClientId)))
        {
            SignedOut = true;
            return Page();
        }

        return SignOut(new AuthenticationProperties(), OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
