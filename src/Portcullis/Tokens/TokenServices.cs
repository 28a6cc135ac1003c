using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Tokens;

/// <summary>
/// The tokens feature. Owns: the token endpoint (one handler per grant: password, refresh, client credentials,
/// authorization code), OpenIddict's server configuration and Portcullis's handlers in its pipeline (TokenHandlers),
/// the key ring and key encryption, reading the revocation feed into Access's <c>RevocationState</c>
/// (<see cref="TokenStateSync"/>), the validated-token cache, client secrets and client settings. Uses: Accounts
/// (password check, sessions), RateLimits (login throttle), Storage (DbContext, write lease), Audit, Access (roles,
/// claim names, revocation state) and Hosting.
/// </summary>
public static class TokenServices
{
    public const string TokenPath = "/connect/token";
    public const string RevocationPath = "/connect/revoke";
    public const string IntrospectionPath = "/connect/introspect";
    public const string JwksPath = "/.well-known/jwks";
    public const string AuthorizationPath = "/connect/authorize";
    public const string UserInfoPath = "/connect/userinfo";
    public const string EndSessionPath = "/connect/endsession";

    /// <summary>RFC 9700 §4.2.1 and the issue: a code lives one minute.</summary>
    public static readonly TimeSpan AuthorizationCodeLifetime = TimeSpan.FromSeconds(60);

    public static IServiceCollection AddPortcullisTokens(this IServiceCollection services)
    {
        services.AddSingleton<KeyRing>();
        services.AddSingleton<RevocationState>();
        services.AddOptions<RevocationOptions>().Configure<IOptions<TokensOptions>>(
            (revocations, tokens) => revocations.Retention = tokens.Value.AccessTokenLifetime + tokens.Value.ClockSkew);
        services.AddSingleton<ValidatedTokenCache>();
        services.AddScoped<PasswordGrant>(); // the token endpoint's grants (TokenEndpoint dispatches on grant_type)
        services.AddScoped<LoginRecords>();
        services.AddScoped<RefreshGrant>();
        services.AddScoped<ClientCredentialsGrant>();
        services.AddScoped<AuthorizationCodeGrant>();
        services.AddScoped<SessionContinuation>();
        services.AddHostedService<TokenStateSync>();
        services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, ServerKeysSetup>();
        services.AddSingleton<IOptionsChangeTokenSource<OpenIddictServerOptions>, ServerKeysSetup>();

        services.AddOpenIddict()
            .AddCore(core =>
            {
                core.UseEntityFrameworkCore().UseDbContext<PortcullisDb>();
                core.ReplaceApplicationManager(typeof(ClientSecretManager<>)); // generated secrets: a fast keyed hash
            })
            .AddServer(server =>
            {
                server.SetTokenEndpointUris(TokenPath.TrimStart('/'))
                    .SetRevocationEndpointUris(RevocationPath.TrimStart('/'))
                    .SetIntrospectionEndpointUris(IntrospectionPath.TrimStart('/'))
                    .SetJsonWebKeySetEndpointUris(JwksPath.TrimStart('/'))
                    .SetAuthorizationEndpointUris(AuthorizationPath.TrimStart('/'))
                    .SetUserInfoEndpointUris(UserInfoPath.TrimStart('/'))
                    .SetEndSessionEndpointUris(EndSessionPath.TrimStart('/'));

                // RFC 9700 §2.4 deprecates the password grant: it is kept only for first-party clients (see
                // docs/adr/0001-password-grant-first-party-only.md) and every client needs the explicit grant-type permission.
                server.AllowPasswordFlow().AllowRefreshTokenFlow().AllowClientCredentialsFlow();

                // The code flow only (implicit and hybrid are refused: RFC 9700 §2.1.2), PKCE with S256 only
                // (RequireNonceWithoutPkce holds the one exception), codes valid one minute and used once.
                server.AllowAuthorizationCodeFlow().SetAuthorizationCodeLifetime(AuthorizationCodeLifetime);
                server.Configure(o => o.CodeChallengeMethods.Remove(CodeChallengeMethods.Plain));
                server.RegisterScopes(PortcullisScopes.OpenId, PortcullisScopes.OfflineAccess, PortcullisScopes.Profile, PortcullisScopes.Email);
                server.RegisterClaims(Claims.Subject, Claims.Name, Claims.PreferredUsername, Claims.Email, Claims.EmailVerified,
                    Claims.AuthenticationTime, Claims.AuthenticationMethodReference, Claims.AuthenticationContextReference, PortcullisClaims.SessionId);

                // Signed, not encrypted, so any resource server can validate with the JWKS alone.
                server.DisableAccessTokenEncryption();

                // Opaque 256-bit refresh tokens stored only as a hash; a reused one revokes the whole family.
                server.UseReferenceRefreshTokens();
                server.SetRefreshTokenReuseLeeway(TimeSpan.Zero);

                // Pass-through: the grants, the authorization page, userinfo and end-session are Portcullis's own code
                // after OpenIddict has validated the request; an authorization error that cannot be sent back to a
                // registered redirect URI is shown as a page here (SignIn/), never redirected.
                server.UseAspNetCore()
                    .EnableTokenEndpointPassthrough()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough()
                    .EnableErrorPassthrough();
                foreach (var handler in TokenHandlers.All)
                {
                    server.AddEventHandler(handler);
                }
            });

        services.AddOptions<OpenIddictServerOptions>().Configure<IOptions<TokensOptions>, IssuerResolver, TimeProvider>((server, tokens, issuer, time) =>
        {
            server.Issuer = issuer.Issuer;
            server.AccessTokenLifetime = tokens.Value.AccessTokenLifetime;
            server.IdentityTokenLifetime = tokens.Value.AccessTokenLifetime;
            server.RefreshTokenLifetime = tokens.Value.RefreshTokenIdleLifetime;
            server.TimeProvider = time;
        });

        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        // OpenIddict's request handler only where its endpoints are (the last registration is the one used).
        services.AddSingleton<IAuthenticationSchemeProvider, RequestHandlerSchemes>();
        services.AddSingleton<IConfigureOptions<JwtBearerOptions>, HardenedJwtBearer>();
        return services;
    }

    /// <summary>Feeds the database keys into OpenIddict and reloads them without a restart when they change.</summary>
    private sealed class ServerKeysSetup(KeyRing keys) : IConfigureOptions<OpenIddictServerOptions>, IOptionsChangeTokenSource<OpenIddictServerOptions>
    {
        public string? Name => Options.DefaultName;

        public IChangeToken GetChangeToken() => keys.GetChangeToken();

        public void Configure(OpenIddictServerOptions options)
        {
            var current = keys.Current;
            // The first signing credential signs; the others are only published in the JWKS.
            foreach (var key in current.SigningKeys)
            {
                options.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256));
            }

            if (current.EncryptionKey is { } aes)
            {
                options.EncryptionCredentials.Add(new EncryptingCredentials(aes, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
            }
        }
    }

    /// <summary>
    /// JWT validation hardened beyond the .NET defaults (REQUIREMENTS NET-08..16): one algorithm, <c>typ: at+jwt</c>,
    /// exact issuer and audience, <c>exp</c> required, small skew, keys chosen by <c>kid</c> only, no error details,
    /// and then the checks JwtBearer does not do: <c>crit</c>, future <c>iat</c>, and revocation.
    /// </summary>
    private sealed class HardenedJwtBearer(
        IOptions<TokensOptions> tokens, IssuerResolver issuer, KeyRing keys, RevocationState revocations, ValidatedTokenCache validated,
        TimeProvider time)
        : IConfigureNamedOptions<JwtBearerOptions>
    {
        public void Configure(JwtBearerOptions options) => Configure(Options.DefaultName, options);

        public void Configure(string? name, JwtBearerOptions options)
        {
            var o = tokens.Value;
            options.MapInboundClaims = false;
            options.IncludeErrorDetails = false;
            options.RequireHttpsMetadata = true;
            options.TokenHandlers.Clear();
            // Full validation once per token string, then from the cache until exp (see ValidatedTokenCache).
            options.TokenHandlers.Add(new CachingJsonWebTokenHandler(validated, keys) { MaximumTokenSizeInBytes = o.MaxTokenBytes, MapInboundClaims = false });
            options.TokenValidationParameters = new TokenValidationParameters
            {
                ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
                ValidTypes = ["at+jwt"],
                ValidIssuer = issuer.Issuer.AbsoluteUri,
                ValidAudience = o.Audience,
                ValidateIssuer = true,
                ValidateAudience = true,
                ValidateLifetime = true,
                RequireExpirationTime = true,
                RequireSignedTokens = true,
                ValidateIssuerSigningKey = true,
                TryAllIssuerSigningKeys = false,
                IssuerSigningKeyResolver = (_, _, kid, _) => keys.Find(kid) is { } key ? [key] : [],
                ClockSkew = o.ClockSkew,
                NameClaimType = Claims.Subject,
                RoleClaimType = Claims.Role,
            };
            options.Events = new JwtBearerEvents
            {
                OnMessageReceived = context =>
                {
                    // Only the Authorization header carries tokens (RFC 6750 §2.3: never the query string).
                    context.Token = null;
                    return Task.CompletedTask;
                },
                OnTokenValidated = async context =>
                {
                    if (!await IsStillValidAsync(context.SecurityToken as JsonWebToken, context.HttpContext.RequestAborted))
                    {
                        context.Fail("invalid_token");
                    }
                },
            };
        }

        private async ValueTask<bool> IsStillValidAsync(JsonWebToken? token, CancellationToken ct)
        {
            if (token is null || token.TryGetHeaderValue<object>("crit", out _))
            {
                return false; // RFC 7515 §4.1.11: no extension is understood here.
            }

            var now = time.GetUtcNow(); // the clock every other token check uses
            if (!token.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat)
                || DateTimeOffset.FromUnixTimeSeconds(iat) > now + tokens.Value.ClockSkew)
            {
                return false;
            }

            if (string.IsNullOrEmpty(token.Id) || revocations.IsTokenRevoked(token.Id))
            {
                return false;
            }

            if (token.TryGetPayloadValue<string>(PortcullisClaims.SessionId, out var sid) && revocations.IsSessionRevoked(sid))
            {
                return false;
            }

            if (token.TryGetPayloadValue<int>(PortcullisClaims.SecurityEpoch, out var epoch))
            {
                if (!Guid.TryParse(token.Subject, out var userId))
                {
                    return false;
                }

                var state = await revocations.GetUserAsync(userId, ct);
                return state.Active && state.Epoch == epoch;
            }

            // Client tokens (client_credentials) have no user epoch.
            return token.TryGetPayloadValue<string>(Claims.ClientId, out var client) && client == token.Subject;
        }
    }
}

/// <summary>The exact issuer: <c>Tokens:Issuer</c>, or the first https URL Portcullis listens on.</summary>
public sealed class IssuerResolver
{
    public IssuerResolver(IOptions<TokensOptions> tokens, IConfiguration configuration)
    {
        var configured = tokens.Value.Issuer;
        if (string.IsNullOrWhiteSpace(configured))
        {
            var urls = (configuration["urls"] ?? PortcullisDefaults.Urls).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            configured = urls.FirstOrDefault(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) ?? urls.FirstOrDefault() ?? PortcullisDefaults.Urls;
        }

        Issuer = new Uri(configured, UriKind.Absolute);
    }

    public Uri Issuer { get; }
}
