using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using Portcullis.Tests.Infrastructure;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// A web application that signs its users in with Portcullis the way a third-party site would: ASP.NET Core's own
/// OpenID Connect handler (authorization code + PKCE, tokens saved in its cookie, claims from userinfo), on Kestrel
/// with TLS in this process, reusing the Portcullis test server's certificate.
/// <para>
/// It is served as <c>https://localhost:PORT</c> while Portcullis is <c>https://127.0.0.1:PORT</c>: cookies ignore
/// ports, so on one host name the two applications would share a cookie jar; two names make them two sites, as in a
/// real deployment (the certificate names both).
/// </para>
/// <para>
/// Pages (no script, each with a strict CSP, so a clean flow records no browser problem): <c>/</c> public;
/// <c>/login</c> challenges (<c>?prompt=login</c> is passed on); <c>/me</c> shows <c>#sub</c>, <c>#name</c> and
/// <c>#refresh-token</c> (<c>saved</c> or <c>none</c>); <c>/refresh</c> redeems the saved refresh token at the token
/// endpoint and shows <c>#status</c> (the HTTP status) and <c>#access-token</c> (<c>issued</c> or <c>none</c>);
/// <c>/logout</c> signs out of the cookie and of Portcullis (RP-initiated logout) and lands on <c>/signed-out</c>;
/// <c>/denied</c> is where a refused consent (<c>access_denied</c>) lands;
/// <c>/csp-violation</c> breaks its own CSP on purpose, for the browser recorder's test.
/// </para>
/// </summary>
public sealed class RelyingParty : IAsyncDisposable
{
    public const string CallbackPath = "/signin-oidc";
    public const string SignedOutCallbackPath = "/signout-callback-oidc";
    public const string CspViolationPath = "/csp-violation";

    public static readonly IReadOnlyList<string> Scopes = [OpenIddictConstants.Scopes.OpenId, OpenIddictConstants.Scopes.Profile, OpenIddictConstants.Scopes.Email, OpenIddictConstants.Scopes.OfflineAccess];

    private const string PageCsp = "default-src 'none'; frame-ancestors 'none'";

    private readonly WebApplication _app;
    private readonly HttpClient _tokenClient;
    private readonly HttpClient _backchannel;
    private readonly PortcullisServer _portcullis;

    private RelyingParty(WebApplication app, HttpClient backchannel, HttpClient tokenClient, PortcullisServer portcullis, RelyingPartyClient client, Uri baseAddress, ConcurrentQueue<string> log)
    {
        _app = app;
        _backchannel = backchannel;
        _tokenClient = tokenClient;
        _portcullis = portcullis;
        Client = client;
        BaseAddress = baseAddress;
        Log = log;
    }

    /// <summary>The client this application presents to Portcullis.</summary>
    public RelyingPartyClient Client { get; }

    /// <summary><c>https://localhost:PORT/</c>.</summary>
    public Uri BaseAddress { get; }

    public Uri RedirectUri => new(BaseAddress, CallbackPath.TrimStart('/'));

    public Uri PostLogoutRedirectUri => new(BaseAddress, SignedOutCallbackPath.TrimStart('/'));

    /// <summary>The application's warnings and errors (the OIDC handler explains a failed sign-in here).</summary>
    public ConcurrentQueue<string> Log { get; }

    /// <summary>The address of <paramref name="path"/> on this application.</summary>
    public string Url(string path) => new Uri(BaseAddress, path.TrimStart('/')).AbsoluteUri;

    /// <summary>
    /// Starts the application against <paramref name="portcullis"/> (Authority = its issuer) as <paramref name="client"/>,
    /// by default a new confidential client. Register it with <see cref="RegisterAsync"/> before the first sign-in.
    /// </summary>
    public static async Task<RelyingParty> StartAsync(PortcullisServer portcullis, RelyingPartyClient? client = null)
    {
        client ??= RelyingPartyClient.NewConfidential();
        if (client.ClientSecret is not null)
        {
            portcullis.Canary.Record(client.ClientSecret); // Portcullis must never log or audit it.
        }

        var log = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Test" });
        builder.Logging.ClearProviders().AddProvider(new QueueLoggerProvider(log)).SetMinimumLevel(LogLevel.Warning);
        // Cookie keys live in memory only: the default repository would write them under the user's home directory
        // (with a warning that they are unencrypted) and leave them there after the test.
        builder.Services.AddDataProtection();
        builder.Services.Configure<KeyManagementOptions>(keys => keys.XmlRepository = new MemoryXmlRepository());
        // Its "no XML encryptor, key may be persisted unencrypted" warning is about storage these keys never reach.
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(portcullis.Certificate)));

        // The token endpoint is called with the server's own test client: it trusts only the pinned certificate and
        // records every token it carries in the canary, so Portcullis's logs are scanned for the RP's tokens too.
        var backchannel = portcullis.CreateClient();
        var tokenClient = portcullis.CreateClient();
        builder.Services.AddAuthorization();
        builder.Services.AddAuthentication(options =>
            {
                options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie(options => options.Cookie.Name = "rp.session")
            .AddOpenIdConnect(options =>
            {
                options.Authority = portcullis.BaseAddress.AbsoluteUri;
                options.RequireHttpsMetadata = true;
                options.Backchannel = backchannel;
                options.ClientId = client.ClientId;
                options.ClientSecret = client.ClientSecret;
                options.ResponseType = OpenIdConnectResponseType.Code;
                // The code comes back in the query, not by form_post: form_post is an auto-submitting page with an
                // inline script, which Portcullis's CSP (default-src 'none') would rightly block.
                options.ResponseMode = OpenIdConnectResponseMode.Query;
                options.UsePkce = true;
                // The contract is the front-channel authorization request; PAR, when Portcullis offers it, is a
                // separate test.
                options.PushedAuthorizationBehavior = PushedAuthorizationBehavior.Disable;
                options.SaveTokens = true;
                options.GetClaimsFromUserInfoEndpoint = true;
                options.MapInboundClaims = false;
                options.DisableTelemetry = true;
                options.Scope.Clear();
                foreach (var scope in Scopes)
                {
                    options.Scope.Add(scope);
                }

                options.CallbackPath = CallbackPath;
                options.SignedOutCallbackPath = SignedOutCallbackPath;
                options.SignedOutRedirectUri = "/signed-out";
                // The user's "Deny" comes back as error=access_denied: a page, not an unhandled remote failure.
                options.AccessDeniedPath = "/denied";
                options.TokenValidationParameters.NameClaimType = Claims.Name;
                options.CorrelationCookie.Name = "rp.correlation.";
                options.NonceCookie.Name = "rp.nonce.";
            });

        var app = builder.Build();
        app.Use((http, next) =>
        {
            // The RP's pages have no script or style at all: anything the browser reports on them is a real problem.
            http.Response.Headers.ContentSecurityPolicy = PageCsp;
            return next(http);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        MapPages(app, tokenClient, client);

        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            backchannel.Dispose();
            tokenClient.Dispose();
            throw;
        }

        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return new RelyingParty(app, backchannel, tokenClient, portcullis, client, new Uri($"https://localhost:{address.Port}/"), log);
    }

    /// <summary>Registers this application with the Portcullis it signs in with (see <see cref="RegisterClientAsync"/>).</summary>
    public Task RegisterAsync() => RegisterClientAsync(_portcullis, Client, RedirectUri, PostLogoutRedirectUri, Scopes);

    /// <summary>
    /// Registers a browser-based client in <paramref name="portcullis"/>: the authorization code flow with PKCE
    /// required, refresh tokens, RP-initiated logout, exactly <paramref name="redirectUri"/> and
    /// <paramref name="postLogoutRedirectUri"/>, and explicit consent (a third-party client: the user is asked).
    /// <para>
    /// Written through OpenIddict's application manager in the server's own services, because the test chooses the
    /// client id and secret (ClientAdministration, the CLI and the admin API generate them; ClientRegistrationTests
    /// covers those). Scopes the server does not know yet (<c>profile</c>, <c>email</c>) are added to its scope store.
    /// </para>
    /// </summary>
    public static async Task RegisterClientAsync(
        PortcullisServer portcullis, RelyingPartyClient client, Uri redirectUri, Uri postLogoutRedirectUri, IEnumerable<string> scopes)
    {
        await using var services = portcullis.Services.CreateAsyncScope();
        var applications = services.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        var scopeStore = services.ServiceProvider.GetRequiredService<IOpenIddictScopeManager>();
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = client.ClientSecret,
            ClientType = client.ClientSecret is null ? ClientTypes.Public : ClientTypes.Confidential,
            ApplicationType = ApplicationTypes.Web,
            ConsentType = ConsentTypes.Explicit,
            DisplayName = client.DisplayName,
            RedirectUris = { redirectUri },
            PostLogoutRedirectUris = { postLogoutRedirectUri },
            Permissions =
            {
                Permissions.Endpoints.Authorization, Permissions.Endpoints.Token, Permissions.Endpoints.EndSession,
                Permissions.GrantTypes.AuthorizationCode, Permissions.GrantTypes.RefreshToken,
                Permissions.ResponseTypes.Code,
            },
            Requirements = { Requirements.Features.ProofKeyForCodeExchange },
        };
        foreach (var scope in scopes.Distinct(StringComparer.Ordinal))
        {
            // openid and offline_access are governed by the endpoints and grant types above, not by scope permissions.
            if (scope is OpenIddictConstants.Scopes.OpenId or OpenIddictConstants.Scopes.OfflineAccess)
            {
                continue;
            }

            if (await scopeStore.FindByNameAsync(scope) is null)
            {
                await scopeStore.CreateAsync(new OpenIddictScopeDescriptor { Name = scope });
            }

            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        await applications.CreateAsync(descriptor);
    }

    private static void MapPages(WebApplication app, HttpClient tokenClient, RelyingPartyClient client)
    {
        app.MapGet("/", (HttpContext http) => Page("Relying party",
            http.User.Identity?.IsAuthenticated == true ? "<p id=\"state\">signed in</p>" : "<p id=\"state\">anonymous</p>"));

        app.MapGet("/login", (string? prompt) =>
        {
            var properties = new OpenIdConnectChallengeProperties { RedirectUri = "/me" };
            if (!string.IsNullOrEmpty(prompt))
            {
                properties.Prompt = prompt;
            }

            return Results.Challenge(properties, [OpenIdConnectDefaults.AuthenticationScheme]);
        });

        app.MapGet("/me", async (HttpContext http) =>
        {
            var refreshToken = await http.GetTokenAsync("refresh_token");
            return Page("Signed in",
                $"<p>sub: <span id=\"sub\">{Html(http.User.FindFirstValue(Claims.Subject))}</span></p>" +
                $"<p>name: <span id=\"name\">{Html(http.User.FindFirstValue(Claims.Name))}</span></p>" +
                $"<p>refresh token: <span id=\"refresh-token\">{(string.IsNullOrEmpty(refreshToken) ? "none" : "saved")}</span></p>");
        }).RequireAuthorization();

        app.MapGet("/refresh", async (HttpContext http, IOptionsMonitor<OpenIdConnectOptions> oidc, CancellationToken ct) =>
        {
            var signedIn = await http.AuthenticateAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            var refreshToken = signedIn.Properties?.GetTokenValue("refresh_token");
            if (!signedIn.Succeeded || string.IsNullOrEmpty(refreshToken))
            {
                return Page("Refresh", "<p>status: <span id=\"status\">no refresh token</span></p>");
            }

            var configuration = await oidc.Get(OpenIdConnectDefaults.AuthenticationScheme).ConfigurationManager!.GetConfigurationAsync(ct);
            var form = new Dictionary<string, string>
            {
                [Parameters.GrantType] = GrantTypes.RefreshToken,
                [Parameters.RefreshToken] = refreshToken,
                [Parameters.ClientId] = client.ClientId,
            };
            if (client.ClientSecret is not null)
            {
                form[Parameters.ClientSecret] = client.ClientSecret;
            }

            using var response = await tokenClient.PostAsync(new Uri(configuration.TokenEndpoint), new FormUrlEncodedContent(form), ct);
            string? accessToken = null;
            if (response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
                accessToken = body.TryGetProperty("access_token", out var at) ? at.GetString() : null;
                // Refresh tokens roll: keep the new one, so the next /refresh redeems a live token.
                signedIn.Properties!.UpdateTokenValue("access_token", accessToken ?? "");
                if (body.TryGetProperty("refresh_token", out var rt) && rt.GetString() is { } rolled)
                {
                    signedIn.Properties.UpdateTokenValue("refresh_token", rolled);
                }

                await http.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, signedIn.Principal!, signedIn.Properties);
            }

            return Page("Refresh",
                $"<p>status: <span id=\"status\">{(int)response.StatusCode}</span></p>" +
                $"<p>access token: <span id=\"access-token\">{(string.IsNullOrEmpty(accessToken) ? "none" : "issued")}</span></p>");
        }).RequireAuthorization();

        // A GET that signs out is fine for a test application (no other site drives this browser); a real one
        // would take a POST with an antiforgery token.
        app.MapGet("/logout", () => Results.SignOut(
            new AuthenticationProperties { RedirectUri = "/signed-out" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]));

        app.MapGet("/signed-out", () => Page("Signed out", "<p id=\"state\">signed out</p>"));

        app.MapGet("/denied", () => Page("Access denied", "<p id=\"state\">denied</p>"));

        app.MapGet(CspViolationPath, () => Results.Content(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>CSP violation</title></head>" +
            "<body><script>document.title = 'the inline script ran';</script></body></html>",
            "text/html; charset=utf-8"));
    }

    private static IResult Page(string title, string body) => Results.Content(
        $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{Html(title)}</title></head><body><h1>{Html(title)}</h1>{body}</body></html>",
        "text/html; charset=utf-8");

    private static string Html(string? text) => HtmlEncoder.Default.Encode(text ?? "");

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
        }
        finally
        {
            await _app.DisposeAsync();
            _tokenClient.Dispose();
            _backchannel.Dispose();
        }
    }

    private sealed class MemoryXmlRepository : IXmlRepository
    {
        private readonly ConcurrentQueue<XElement> _elements = new();

        public IReadOnlyCollection<XElement> GetAllElements() => [.. _elements.Select(e => new XElement(e))];

        public void StoreElement(XElement element, string friendlyName) => _elements.Enqueue(new XElement(element));
    }

    /// <summary>Collects the application's log lines for a failing test's message.</summary>
    private sealed class QueueLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new QueueLogger(categoryName, lines);

        public void Dispose()
        {
        }

        private sealed class QueueLogger(string category, ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
    }
}

/// <summary>
/// The client a <see cref="RelyingParty"/> presents: a secret makes it confidential, none public (PKCE either way).
/// </summary>
public sealed record RelyingPartyClient(string ClientId, string? ClientSecret, string DisplayName)
{
    public const string DefaultDisplayName = "Example Relying Party";

    public static RelyingPartyClient NewConfidential(string displayName = DefaultDisplayName) =>
        new("rp_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(9)), Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32)), displayName);

    public static RelyingPartyClient NewPublic(string displayName = DefaultDisplayName) =>
        new("rp_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(9)), null, displayName);

    // The secret stays out of test output and failure messages.
    public override string ToString() => $"{ClientId} ({(ClientSecret is null ? "public" : "confidential")}, \"{DisplayName}\")";
}
