using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Portcullis.RateLimits;
using Portcullis.Storage;
using Portcullis.Tokens;

namespace Portcullis.SignIn;

/// <summary>
/// The hosted pages a person meets: sign-in, consent, sign-out and their account, and the OpenID Connect endpoints
/// that need a person (authorization, userinfo, end-session), on OpenIddict's pass-through mode.
/// <para>Owns: the browser session (cookie + server-side record), the pages under <c>SignIn/Pages</c>, their
/// Content-Security-Policy and antiforgery, the userinfo answer. Uses: Accounts (password check, sessions), Tokens
/// (claims, revocation state, the token session model), RateLimits (the login throttle), Audit.</para>
/// </summary>
public static class SignInServices
{
    public const string SignInPath = "/signin";
    public const string AccountPath = "/account";
    public const string StylePath = "/assets/portcullis.css";
    public const string IconPath = "/assets/portcullis.svg";

    private static readonly string[] CredentialPages = ["/SignIn", "/SignUp", "/SignInCode", "/ForgotPassword", "/ResetPassword", "/VerifyEmail"];

    public static IServiceCollection AddPortcullisSignIn(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<SignInOptions>().BindConfiguration(SignInOptions.Section)
            .Validate(o => o.IdleLifetime > TimeSpan.Zero && o.AbsoluteLifetime >= o.IdleLifetime,
                "SignIn:IdleLifetime must be positive and no longer than SignIn:AbsoluteLifetime.");
        new IdentityBuilder(typeof(User), typeof(Role), services).AddSignInManager();
        services.AddScoped<BrowserSession>();
        services.AddSingleton<PendingSignIn>();
        services.AddSingleton<BrowserSession.Validator>();
        services.AddAuthentication().AddCookie(BrowserSession.Scheme, _ => { });
        services.AddSingleton<IConfigureOptions<CookieAuthenticationOptions>, CookieSetup>();

        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "__Host-portcullis-af";
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.HttpOnly = true;
            antiforgery.FormFieldName = "__af";
            antiforgery.SuppressXFrameOptionsHeader = true; // SecurityHeaders sends DENY on every response
        });
        services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/SignIn/Pages";
            // The fallback policy asks for a bearer token; a page decides from the browser session itself.
            pages.Conventions.AllowAnonymousToFolder("/");
            pages.Conventions.ConfigureFilter(new AutoValidateAntiforgeryTokenAttribute());
            pages.Conventions.ConfigureFilter(new PageSecurity());
            // A page answers only the methods it has handlers for (and GET/HEAD, which render it); any other method is
            // routing's 405 with Allow (HDR-07), not the page rendered without a handler.
            pages.Conventions.AddFolderApplicationModelConvention("/", model => model.EndpointMetadata.Add(
                new Microsoft.AspNetCore.Routing.HttpMethodMetadata(
                    [.. model.HandlerMethods.Select(h => h.HttpMethod.ToUpperInvariant()).Append("GET").Append("HEAD").Distinct()])));
            // The pages that check a password, create an account or reset a password share the token endpoint's per-IP credential
            // limit, on top of the login throttle (per account) and the password-hashing limit.
            foreach (var page in CredentialPages)
            {
                pages.Conventions.AddPageApplicationModelConvention(page, model =>
                    model.EndpointMetadata.Add(new Microsoft.AspNetCore.RateLimiting.EnableRateLimitingAttribute(RateLimitPolicies.Credentials)));
            }
        });
        return services;
    }

    public static WebApplication MapPortcullisSignIn(this WebApplication app)
    {
        app.MapRazorPages().RequireRateLimiting(RateLimitPolicies.Anonymous);
        app.MapMethods(TokenServices.UserInfoPath, ["GET", "POST"], UserInfoEndpoint.HandleAsync)
            .AllowAnonymous() // OpenIddict validates the access token itself
            .DisableAntiforgery()
            .RequireRateLimiting(RateLimitPolicies.Anonymous)
            .WithTags("OAuth");
        app.MapGet(StylePath, () => Results.Text(PageStyle.Css, "text/css; charset=utf-8"))
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Anonymous)
            .ExcludeFromDescription();
        // The pages name their icon, so a browser does not ask for /favicon.ico (which, like every unknown path, is 401).
        app.MapGet(IconPath, () => Results.Text(PageStyle.Icon, "image/svg+xml"))
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Anonymous)
            .ExcludeFromDescription();
        return app;
    }

    private sealed class CookieSetup(BrowserSession.Validator validator, IOptions<SignInOptions> signIn) : IConfigureNamedOptions<CookieAuthenticationOptions>
    {
        public void Configure(CookieAuthenticationOptions options) => Configure(Options.DefaultName, options);

        public void Configure(string? name, CookieAuthenticationOptions options)
        {
            if (name != BrowserSession.Scheme)
            {
                return;
            }

            // __Host-: only this origin, only over TLS, path /; Lax so a relying party's redirect to /connect/authorize
            // carries it, and no cross-site POST does.
            options.Cookie.Name = BrowserSession.CookieName;
            options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            options.Cookie.HttpOnly = true;
            options.Cookie.SameSite = SameSiteMode.Lax;
            options.Cookie.Path = "/";
            options.Cookie.Domain = null;
            options.ExpireTimeSpan = signIn.Value.IdleLifetime;
            options.SlidingExpiration = true;
            options.LoginPath = SignInPath;
            options.Events = validator;
        }
    }
}
