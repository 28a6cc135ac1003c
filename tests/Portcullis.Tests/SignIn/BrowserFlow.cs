using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Admin;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.SignIn;

/// <summary>
/// A browser without JavaScript, in raw HTTP: a cookie jar, no automatic redirects, forms read from the pages and
/// posted back with their antiforgery token. What the authorization-code tests drive.
/// </summary>
public sealed partial class BrowserFlow : IDisposable
{
    private readonly PortcullisServer _server;

    public BrowserFlow(PortcullisServer server)
    {
        _server = server;
        Cookies = new CookieContainer();
        Http = server.CreateClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == server.Certificate.GetCertHashString() },
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = Cookies,
        });
    }

    public CookieContainer Cookies { get; }

    public HttpClient Http { get; }

    public Uri Origin => new(_server.BaseAddress.GetLeftPart(UriPartial.Authority));

    public void Dispose() => Http.Dispose();

    /// <summary>Registers a client through the product's own client administration.</summary>
    public static async Task<ClientAdministration.ClientSecret> RegisterClientAsync(PortcullisServer server, ClientAdministration.ClientSpec spec)
    {
        Assert.Null(ClientAdministration.Validate(spec));
        await using var scope = server.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ClientAdministration>().CreateAsync(spec, CancellationToken.None);
    }

    public static (string Verifier, string Challenge) NewPkce()
    {
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    public static string AuthorizeUrl(IReadOnlyDictionary<string, string?> parameters) =>
        QueryHelpers.AddQueryString("/connect/authorize", parameters);

    /// <summary>The usual request: code, PKCE S256, state and nonce.</summary>
    public static Dictionary<string, string?> CodeRequest(string clientId, string redirectUri, string challenge, string scope = "openid profile email offline_access") => new()
    {
        ["client_id"] = clientId,
        ["redirect_uri"] = redirectUri,
        ["response_type"] = "code",
        ["scope"] = scope,
        ["state"] = "st-" + Guid.NewGuid().ToString("N"),
        ["nonce"] = "n-" + Guid.NewGuid().ToString("N"),
        ["code_challenge"] = challenge,
        ["code_challenge_method"] = "S256",
    };

    public Task<HttpResponseMessage> GetAsync(string url) => Http.GetAsync(url);

    /// <summary>GETs a page and posts its (first, or the one with <paramref name="button"/>) form back with <paramref name="fields"/> set.</summary>
    public async Task<HttpResponseMessage> SubmitAsync(string pageUrl, IReadOnlyDictionary<string, string> fields, (string Name, string Value)? button = null)
    {
        using var page = await Http.GetAsync(pageUrl);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        return await PostFormAsync(pageUrl, html, fields, button);
    }

    /// <summary>Posts the form found in <paramref name="html"/> (served at <paramref name="pageUrl"/>), hidden fields included.</summary>
    public Task<HttpResponseMessage> PostFormAsync(string pageUrl, string html, IReadOnlyDictionary<string, string> fields, (string Name, string Value)? button = null, bool withAntiforgery = true, string? origin = null)
    {
        var form = Forms(html).FirstOrDefault(f => button is null || f.Contains(button.Value.Value, StringComparison.Ordinal))
            ?? throw new InvalidOperationException("No form on the page:\n" + html);
        var action = ActionPattern().Match(form) is { Success: true } a ? WebUtility.HtmlDecode(a.Groups[1].Value) : pageUrl;
        var values = new List<KeyValuePair<string, string>>();
        foreach (var input in InputPattern().Matches(form).Select(m => m.Value).Where(i => i.Contains("type=\"hidden\"", StringComparison.Ordinal)))
        {
            var name = WebUtility.HtmlDecode(Attribute(input, "name"));
            if (name == "__af" && !withAntiforgery)
            {
                continue;
            }

            if (!fields.ContainsKey(name))
            {
                values.Add(new(name, WebUtility.HtmlDecode(Attribute(input, "value"))));
            }
        }

        values.AddRange(fields);
        if (button is { } b)
        {
            values.Add(new(b.Name, b.Value));
        }

        var request = new HttpRequestMessage(HttpMethod.Post, string.IsNullOrEmpty(action) ? pageUrl : action)
        {
            Content = new FormUrlEncodedContent(values),
        };
        request.Headers.TryAddWithoutValidation("Origin", origin ?? Origin.GetLeftPart(UriPartial.Authority));
        return Http.SendAsync(request);
    }

    /// <summary>
    /// From an authorization URL to the code: signs in when asked (<paramref name="username"/>), allows consent when
    /// asked, and returns the final redirect to the client.
    /// </summary>
    public async Task<Uri> AuthorizeAsync(string authorizeUrl, string? username, string password = ClientFlows.Password, bool allowConsent = true)
    {
        var url = authorizeUrl;
        for (var step = 0; step < 8; step++)
        {
            using var response = await Http.GetAsync(url);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var html = await response.Content.ReadAsStringAsync();
                Assert.Contains("name=\"decision\"", html, StringComparison.Ordinal); // only the consent page may stop the way
                using var decided = await PostFormAsync(url, html, new Dictionary<string, string>(), ("decision", allowConsent ? "allow" : "deny"));
                Assert.Equal(HttpStatusCode.Found, decided.StatusCode);
                url = decided.Headers.Location!.OriginalString;
            }
            else
            {
                Assert.Equal(HttpStatusCode.Found, response.StatusCode);
                url = response.Headers.Location!.OriginalString;
            }

            if (!url.StartsWith('/'))
            {
                return new Uri(url);
            }

            if (url.StartsWith("/signin", StringComparison.Ordinal))
            {
                Assert.NotNull(username);
                using var signedIn = await SubmitAsync(url, new Dictionary<string, string> { ["Username"] = username!, ["Password"] = password });
                Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
                url = signedIn.Headers.Location!.OriginalString;
                username = null; // once
            }
        }

        throw new InvalidOperationException("Too many redirects.");
    }

    public static Dictionary<string, string> Query(Uri uri) =>
        QueryHelpers.ParseQuery(uri.Query).ToDictionary(p => p.Key, p => p.Value.ToString());

    public Task<HttpResponseMessage> ExchangeAsync(string clientId, string code, string redirectUri, string? verifier, string? secret = null)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["redirect_uri"] = redirectUri,
            ["client_id"] = clientId,
        };
        if (verifier is not null)
        {
            form["code_verifier"] = verifier;
        }

        if (secret is not null)
        {
            form["client_secret"] = secret;
        }

        return Http.PostAsync("connect/token", new FormUrlEncodedContent(form));
    }

    private static IEnumerable<string> Forms(string html) => FormPattern().Matches(html).Select(m => m.Value);

    [GeneratedRegex("<form[^>]*>.*?</form>", RegexOptions.Singleline)]
    private static partial Regex FormPattern();

    [GeneratedRegex("<form[^>]*action=\"([^\"]*)\"")]
    private static partial Regex ActionPattern();

    [GeneratedRegex("<input[^>]*>")]
    private static partial Regex InputPattern();

    private static string Attribute(string tag, string name) =>
        Regex.Match(tag, $"\\s{name}=\"([^\"]*)\"") is { Success: true } m ? m.Groups[1].Value : "";
}
