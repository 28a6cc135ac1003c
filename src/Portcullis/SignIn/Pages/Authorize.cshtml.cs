using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Access;
using Portcullis.Audit;
using Portcullis.Storage;
using Portcullis.Tokens;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.SignIn.Pages;

/// <summary>
/// <c>/connect/authorize</c> after OpenIddict has validated the request (client, exact redirect URI, response type,
/// PKCE, scopes). No browser session, <c>prompt=login</c> or an old sign-in under <c>max_age</c>: to the sign-in
/// page and back. A third-party client without the user's consent to these scopes: the consent page, whose answer
/// is posted back here. Then a code, bound to the browser session (<c>sid</c>), so ending that session ends what the
/// code is exchanged for. An error that cannot go back to a registered redirect URI is shown here, never redirected.
/// <para>The request itself may come by GET or by POST from the relying party's page (OpenID Connect Core §3.1.2.1),
/// so a post is not refused for its origin or a missing antiforgery token; the consent answer (a post with
/// <c>decision</c>) is, as on every other page.</para>
/// </summary>
[IgnoreAntiforgeryToken(Order = 2000)] // after the folder's AutoValidateAntiforgeryToken (1000): the last policy wins
[AcceptsCrossSitePost]
public sealed class AuthorizeModel(
    IOpenIddictApplicationManager applications, IOpenIddictAuthorizationManager authorizations, UserManager<User> users,
    IOptions<TokensOptions> tokens, AuditLog audit, TimeProvider time, IAntiforgery antiforgery) : PageModel
{
    public string? Error { get; private set; }

    public string ClientName { get; private set; } = "";

    public string Username { get; private set; } = "";

    public IReadOnlyList<string> ScopeDescriptions { get; private set; } = [];

    public IReadOnlyList<(string Name, string Value)> Parameters { get; private set; } = [];

    public Task<IActionResult> OnGetAsync(CancellationToken ct) => HandleAsync(decision: null, ct);

    public async Task<IActionResult> OnPostAsync([FromForm(Name = "decision")] string? decision, CancellationToken ct)
    {
        if (decision is null)
        {
            return await HandleAsync(decision: null, ct); // an authorization request sent by POST: as by GET
        }

        // The consent answer: from this origin, with its antiforgery token.
        if (!PageSecurity.IsSameOrigin(HttpContext))
        {
            return PageSecurity.CrossSiteRefusal();
        }

        if (!await antiforgery.IsRequestValidAsync(HttpContext))
        {
            return BadRequest();
        }

        return await HandleAsync(decision, ct);
    }

    private async Task<IActionResult> HandleAsync(string? decision, CancellationToken ct)
    {
        if (HttpContext.GetOpenIddictServerResponse() is { Error: { } error } response)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            Error = response.ErrorDescription ?? error;
            return Page();
        }

        var request = HttpContext.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenIddict request is missing.");
        var current = await BrowserSession.GetAsync(HttpContext);
        var now = time.GetUtcNow();
        var mustSignIn = current is null
            || request.HasPromptValue(PromptValues.Login)
            || (request.MaxAge is { } maxAge && DateTimeOffset.FromUnixTimeSeconds(current.AuthTime).AddSeconds(maxAge) < now);
        if (mustSignIn)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Refuse(Errors.LoginRequired, "The user is not signed in.");
            }

            // Back here after signing in, without what asked for the sign-in (or it would ask again, for ever).
            return Redirect(SignInServices.SignInPath + "?ReturnUrl=" + Uri.EscapeDataString(ReturnUrl(request, dropSignInDemands: true)));
        }

        var user = await users.FindByIdAsync(current!.UserId.ToString());
        var application = await applications.FindByClientIdAsync(request.ClientId!, ct);
        if (user is null || application is null)
        {
            return Refuse(Errors.AccessDenied, "The user or the client no longer exists.");
        }

        var applicationId = (await applications.GetIdAsync(application, ct))!;
        var scopes = request.GetScopes();
        var subject = user.Id.ToString();
        if (!await applications.HasConsentTypeAsync(application, ConsentTypes.Implicit, ct))
        {
            var consented = !request.HasPromptValue(PromptValues.Consent)
                && await HasConsentAsync(subject, applicationId, scopes, ct);
            if (!consented && decision != "allow")
            {
                if (request.HasPromptValue(PromptValues.None))
                {
                    return Refuse(Errors.ConsentRequired, "The user has not allowed this client.");
                }

                if (decision == "deny")
                {
                    return Refuse(Errors.AccessDenied, "The user denied the request.");
                }

                ClientName = await applications.GetLocalizedDisplayNameAsync(application, ct) ?? request.ClientId!;
                Username = user.UserName ?? "";
                ScopeDescriptions = [.. scopes.Select(Describe)];
                Parameters = [.. FormParameters(request)];
                PageSecurity.AllowFormTarget(HttpContext, new Uri(request.RedirectUri!, UriKind.Absolute));
                return Page();
            }

            if (!consented)
            {
                var consent = new OpenIddictAuthorizationDescriptor
                {
                    ApplicationId = applicationId,
                    Subject = subject,
                    Type = AuthorizationTypes.Permanent,
                    Status = Statuses.Valid,
                    CreationDate = now,
                };
                consent.Scopes.UnionWith(scopes);
                audit.Record(AuditEvents.ConsentGranted, AuditOutcomes.Success, $"client:{request.ClientId}", new { scopes }, actor: $"user:{user.Id}");
                await authorizations.CreateAsync(consent, ct);
            }
        }

        var identity = await TokenPrincipals.UserIdentityAsync(user, users, current.SessionStart);
        identity.SetClaim(PortcullisClaims.SessionId, current.SessionId);
        identity.SetClaim(Claims.AuthenticationTime, current.AuthTime);
        // A JSON array even with one method (OpenID Connect Core §2): one claim of the JSON_ARRAY value type.
        var methods = current.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        identity.AddClaim(new Claim(Claims.AuthenticationMethodReference, JsonSerializer.Serialize(methods), Microsoft.IdentityModel.JsonWebTokens.JsonClaimValueTypes.JsonArray));
        identity.SetClaim(Claims.AuthenticationContextReference, TokenPrincipals.AuthenticationContexts.For(methods));
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(scopes);
        principal.SetResources(tokens.Value.Audience);
        principal.SetAuthorizationId(current.SessionId); // every token of this sign-in belongs to the browser session
        TokenPrincipals.SetDestinations(principal);

        // Staged: OpenIddict's save of the code entry (same context) carries it, in one commit.
        audit.Record(AuditEvents.CodeIssued, AuditOutcomes.Success, $"session:{current.SessionId}", new { client = request.ClientId, scopes }, actor: $"user:{user.Id}");

        return SignIn(principal, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private async Task<bool> HasConsentAsync(string subject, string applicationId, ImmutableArray<string> scopes, CancellationToken ct)
    {
        await foreach (var _ in authorizations.FindAsync(subject, applicationId, Statuses.Valid, AuthorizationTypes.Permanent, scopes, ct))
        {
            return true;
        }

        return false;
    }

    private ForbidResult Refuse(string error, string description) =>
        Forbid(new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }), OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);

    /// <summary>The request's parameters, for the consent form to post back (not the form's own fields).</summary>
    private static IEnumerable<(string, string)> FormParameters(OpenIddictRequest request) =>
        from parameter in request.GetParameters()
        where parameter.Key is not ("decision" or "__af")
        let values = (Microsoft.Extensions.Primitives.StringValues)parameter.Value
        from value in values
        where value is not null
        select (parameter.Key, value);

    /// <summary>This request as a local URL; for the sign-in page, without <c>prompt=login</c> and <c>max_age</c>.</summary>
    private static string ReturnUrl(OpenIddictRequest request, bool dropSignInDemands)
    {
        var pairs = new List<KeyValuePair<string, string?>>();
        foreach (var (name, value) in FormParameters(request))
        {
            if (dropSignInDemands && name == OpenIddictConstants.Parameters.MaxAge)
            {
                continue;
            }

            if (dropSignInDemands && name == OpenIddictConstants.Parameters.Prompt)
            {
                var rest = string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(p => p != PromptValues.Login));
                if (rest.Length > 0)
                {
                    pairs.Add(new(name, rest));
                }

                continue;
            }

            pairs.Add(new(name, value));
        }

        return TokenServices.AuthorizationPath + QueryString.Create(pairs).ToUriComponent();
    }

    private static string Describe(string scope) => scope switch
    {
        Scopes.OpenId => "Know who you are (your account id)",
        Scopes.Profile => "See your username",
        Scopes.Email => "See your e-mail address",
        Scopes.OfflineAccess => "Stay signed in when you are away (refresh tokens)",
        _ => $"Use the API scope \u201c{scope}\u201d",
    };
}
