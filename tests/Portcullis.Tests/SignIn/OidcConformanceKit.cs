using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Portcullis.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// What the OpenID Foundation's conformance suite does as a relying party, in raw HTTP over <see cref="BrowserFlow"/>:
/// a confidential client registered with the PKCE opt-out (so the plan's no-PKCE modules run, with a <c>nonce</c>),
/// client_secret_basic and client_secret_post, and ID tokens validated as the suite does (signature against the
/// published JWKS by <c>kid</c>, <c>iss</c>, <c>aud</c>, <c>exp</c>, <c>iat</c>, <c>nonce</c>, <c>at_hash</c>).
/// See /work/shared/security/OIDC_CONFORMANCE.md (the plans and their modules).
/// </summary>
internal sealed class OidcConformanceKit(PortcullisServer server, HttpClient api)
{
    public const string Redirect = "https://rp.conformance.example/callback";
    public const string AfterLogout = "https://rp.conformance.example/post_logout";

    public sealed record Client(string ClientId, string Secret);

    public PortcullisServer Server { get; } = server;

    public string Issuer => Server.BaseAddress.AbsoluteUri;

    /// <summary>The suite's client: confidential, first-party (no consent page), PKCE optional so nonce required.</summary>
    public async Task<Client> ClientAsync(string name = "Conformance RP")
    {
        var created = await BrowserFlow.RegisterClientAsync(Server, new ClientAdministration.ClientSpec(
            name, ["openid", "profile", "email", "offline_access"], "confidential", [Redirect], [AfterLogout], FirstParty: true, AllowNoPkce: true));
        return new Client(created.ClientId, created.Secret!);
    }

    public async Task<(Guid Id, string Username)> UserAsync()
    {
        var username = ClientFlows.UniqueName("oc");
        return (await api.RegisterOkAsync(username), username);
    }

    /// <summary>A browser signed in as <paramref name="username"/> (the suite's "user already logged in" step).</summary>
    public async Task<BrowserFlow> SignedInAsync(string username)
    {
        var browser = new BrowserFlow(Server);
        using var response = await browser.SubmitAsync("/signin", new Dictionary<string, string> { ["Username"] = username, ["Password"] = ClientFlows.Password });
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        return browser;
    }

    /// <summary>The suite's default authorization request: code, no PKCE, state and nonce.</summary>
    public static Dictionary<string, string?> Request(Client client, string scope = "openid") => new()
    {
        ["client_id"] = client.ClientId,
        ["redirect_uri"] = Redirect,
        ["response_type"] = "code",
        ["scope"] = scope,
        ["state"] = "st-" + Guid.NewGuid().ToString("N"),
        ["nonce"] = "n-" + Guid.NewGuid().ToString("N"),
    };

    /// <summary>The callback of an authorization that went through: to the registered URI, the state back, a code, the issuer (RFC 9207).</summary>
    public string CodeOf(Uri callback, IReadOnlyDictionary<string, string?> request)
    {
        Assert.Equal(Redirect, callback.GetLeftPart(UriPartial.Path));
        var query = BrowserFlow.Query(callback);
        Assert.False(query.ContainsKey("error"), callback.Query);
        Assert.Equal(request["state"], query["state"]);
        Assert.Equal(Issuer, query["iss"]);
        return query["code"];
    }

    public static AuthenticationHeaderValue Basic(Client client) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(
            $"{Uri.EscapeDataString(client.ClientId)}:{Uri.EscapeDataString(client.Secret)}"))); // RFC 6749 §2.3.1: form-encoded first

    /// <summary>The token request with client_secret_basic (<paramref name="post"/>: client_secret_post).</summary>
    public static Task<HttpResponseMessage> TokenAsync(BrowserFlow browser, Client client, Dictionary<string, string> form, bool post = false)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "connect/token");
        if (post)
        {
            form["client_id"] = client.ClientId;
            form["client_secret"] = client.Secret;
        }
        else
        {
            request.Headers.Authorization = Basic(client);
        }

        request.Content = new FormUrlEncodedContent(form);
        return browser.Http.SendAsync(request);
    }

    public static Task<HttpResponseMessage> ExchangeAsync(BrowserFlow browser, Client client, string code, string? verifier = null, bool post = false)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = Redirect };
        if (verifier is not null)
        {
            form["code_verifier"] = verifier;
        }

        return TokenAsync(browser, client, form, post);
    }

    /// <summary>Authorize (signing in when asked) and exchange the code: the token response, checked to be a success.</summary>
    public async Task<JsonElement> CodeFlowAsync(BrowserFlow browser, Client client, Dictionary<string, string?> request, string? username = null, bool post = false)
    {
        var code = CodeOf(await browser.AuthorizeAsync(BrowserFlow.AuthorizeUrl(request), username), request);
        using var exchanged = await ExchangeAsync(browser, client, code, post: post);
        Assert.True(exchanged.StatusCode == HttpStatusCode.OK, await exchanged.Content.ReadAsStringAsync());
        Assert.Equal("no-store", exchanged.Headers.CacheControl?.ToString());
        var body = await exchanged.JsonAsync();
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString(), StringComparer.OrdinalIgnoreCase);
        Assert.True(body.GetProperty("expires_in").GetInt32() > 0);
        return body;
    }

    public async Task<JsonWebKeySet> JwksAsync() => new(await api.GetStringAsync(".well-known/jwks"));

    /// <summary>
    /// An ID token validated as the suite does: ES256 signature by the JWKS key its <c>kid</c> names, exact issuer,
    /// audience the client, <c>exp</c> in the future, <c>iat</c> now, <c>sub</c>, the request's <c>nonce</c>
    /// (absent when none was sent), and <c>at_hash</c> when present matching the access token.
    /// </summary>
    public async Task<JsonWebToken> ValidIdTokenAsync(string idToken, Client client, string? nonce, string? accessToken = null)
    {
        var jwks = await JwksAsync();
        var handler = new JsonWebTokenHandler { MapInboundClaims = false };
        var read = handler.ReadJsonWebToken(idToken);
        Assert.False(string.IsNullOrEmpty(read.Kid), "the ID token names no kid");
        Assert.Contains(jwks.Keys, k => k.Kid == read.Kid);
        Assert.Equal("ES256", read.Alg);

        var result = await handler.ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = client.ClientId,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            TryAllIssuerSigningKeys = false, // the kid must name the key
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = TimeSpan.FromSeconds(5),
        });
        Assert.True(result.IsValid, result.Exception?.ToString());
        var token = (JsonWebToken)result.SecurityToken;

        Assert.False(string.IsNullOrEmpty(token.Subject));
        Assert.True(token.TryGetPayloadValue<long>("iat", out var iat), "no iat");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(iat, now - 120, now + 5);
        Assert.True(token.TryGetPayloadValue<long>("exp", out var exp) && exp > iat);
        if (token.TryGetPayloadValue<string[]>("aud", out var audiences) && audiences.Length > 1)
        {
            Assert.Equal(client.ClientId, token.GetPayloadValue<string>("azp"));
        }

        if (nonce is null)
        {
            Assert.False(token.TryGetPayloadValue<string>("nonce", out _), "a nonce nobody sent");
        }
        else
        {
            Assert.Equal(nonce, token.GetPayloadValue<string>("nonce"));
        }

        if (token.TryGetPayloadValue<string>("at_hash", out var atHash))
        {
            Assert.NotNull(accessToken);
            var hash = SHA256.HashData(Encoding.ASCII.GetBytes(accessToken!));
            Assert.Equal(Base64UrlEncoder.Encode(hash[..(hash.Length / 2)]), atHash);
        }

        return token;
    }

    public async Task<JsonWebToken> ValidIdTokenAsync(JsonElement tokenResponse, Client client, string? nonce) =>
        await ValidIdTokenAsync(tokenResponse.GetProperty("id_token").GetString()!, client, nonce, tokenResponse.GetProperty("access_token").GetString());

    /// <summary>A request OpenIddict finds invalid: a 400 page on Portcullis, no Location, no code.</summary>
    public static async Task<string> ErrorPageAsync(HttpResponseMessage response, string heading = "This sign-in request was refused")
    {
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {response.Headers.Location}: {html}");
        Assert.Null(response.Headers.Location);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains(heading, html, StringComparison.Ordinal);
        Assert.DoesNotContain("code=", html, StringComparison.Ordinal);
        return html;
    }

    /// <summary>The error message an error page shows.</summary>
    public static string ErrorMessage(string html) =>
        System.Net.WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Match(html, "<p class=\"error\" role=\"alert\">([^<]*)</p>").Groups[1].Value);

    /// <summary>An error sent back to the client's registered redirect URI, with the state and no code.</summary>
    public Dictionary<string, string> ErrorSentBack(HttpResponseMessage response, IReadOnlyDictionary<string, string?> request)
    {
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.Equal(Redirect, location.GetLeftPart(UriPartial.Path));
        var query = BrowserFlow.Query(location);
        Assert.False(query.ContainsKey("code"));
        Assert.Equal(request["state"], query["state"]);
        Assert.Equal(Issuer, query["iss"]);
        return query;
    }

    public static async Task<HttpResponseMessage> UserInfoAsync(BrowserFlow browser, string accessToken, HttpMethod method, bool inBody = false)
    {
        var request = new HttpRequestMessage(method, "connect/userinfo");
        if (inBody)
        {
            request.Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["access_token"] = accessToken });
        }
        else
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
            if (method == HttpMethod.Post)
            {
                request.Content = new FormUrlEncodedContent([]);
            }
        }

        return await browser.Http.SendAsync(request);
    }
}
