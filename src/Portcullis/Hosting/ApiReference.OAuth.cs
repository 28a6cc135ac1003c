using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Portcullis.Tokens;

namespace Portcullis.Hosting;

/// <summary>
/// Adds to the OpenAPI document what the endpoint description cannot see: the OAuth 2.0 and OpenID Connect endpoints
/// (OpenIddict answers them, or the mapped handler only passes its request through), and the two ways a caller
/// authenticates — a bearer access token (a JWT) and OAuth 2.0 with Portcullis's token URL and the flows it serves.
/// </summary>
internal sealed class OAuthDocument(IssuerResolver issuer) : IOpenApiDocumentTransformer
{
    public const string BearerScheme = "bearer";
    public const string OAuthScheme = "oauth2";
    private const string Tag = "OAuth";

    /// <summary>Either scheme (two requirements: one of them is enough): an access token, however it was obtained.</summary>
    public static List<OpenApiSecurityRequirement> Requirements(OpenApiDocument? document) =>
    [
        new() { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] },
        new() { [new OpenApiSecuritySchemeReference(OAuthScheme, document)] = [] },
    ];

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        var root = issuer.Issuer.AbsoluteUri.EndsWith('/') ? issuer.Issuer : new Uri(issuer.Issuer.AbsoluteUri + "/");
        Uri At(string path) => new(root, path.TrimStart('/'));
        var scopes = new Dictionary<string, string>
        {
            [PortcullisScopes.OpenId] = "Sign in (an ID token; the subject at userinfo).",
            [PortcullisScopes.OfflineAccess] = "A refresh token.",
            [PortcullisScopes.Profile] = "The user's name at userinfo.",
            [PortcullisScopes.Email] = "The user's e-mail address at userinfo.",
        };

        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = $"An access token from {TokenServices.TokenPath}, sent as 'Authorization: Bearer <token>'.",
        };
        document.Components.SecuritySchemes[OAuthScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.OAuth2,
            Description = "OAuth 2.0 with Portcullis as the authorization server. The password grant is for the first-party client only (docs/adr/0001).",
            Flows = new OpenApiOAuthFlows
            {
                AuthorizationCode = new OpenApiOAuthFlow
                {
                    AuthorizationUrl = At(TokenServices.AuthorizationPath),
                    TokenUrl = At(TokenServices.TokenPath),
                    RefreshUrl = At(TokenServices.TokenPath),
                    Scopes = scopes,
                },
                ClientCredentials = new OpenApiOAuthFlow { TokenUrl = At(TokenServices.TokenPath), Scopes = new Dictionary<string, string>() },
                Password = new OpenApiOAuthFlow { TokenUrl = At(TokenServices.TokenPath), RefreshUrl = At(TokenServices.TokenPath), Scopes = scopes },
            },
        };

        document.Tags ??= new HashSet<OpenApiTag>();
        if (!document.Tags.Any(t => t.Name == Tag))
        {
            document.Tags.Add(new OpenApiTag { Name = Tag, Description = "OAuth 2.0 and OpenID Connect endpoints (docs/sign-in.md)." });
        }

        document.Paths ??= [];
        var oauth = new Operations(document);
        document.Paths[TokenServices.TokenPath] = oauth.Path(HttpMethod.Post, Operations.Form(
                "Issues tokens (RFC 6749 §3.2). Authenticate a confidential client with client_id and client_secret in the body or HTTP Basic.",
                ["grant_type"],
                ("grant_type", "password, client_credentials, authorization_code or refresh_token."),
                ("username", "password grant."), ("password", "password grant."),
                ("code", "authorization_code grant."), ("redirect_uri", "authorization_code grant: as sent to the authorization endpoint."),
                ("code_verifier", "authorization_code grant: the PKCE verifier."), ("refresh_token", "refresh_token grant; the one presented is spent."),
                ("client_id", "The client."), ("client_secret", "A confidential client's secret."), ("scope", "Space-separated scopes.")),
            "Token", Operations.Json("The tokens.", "access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope"),
            ("400", "invalid_request, invalid_grant, unsupported_grant_type … (RFC 6749 §5.2)."), ("401", "invalid_client."), ("429", "Too many requests."));
        document.Paths[TokenServices.RevocationPath] = oauth.Path(HttpMethod.Post, Operations.Form(
                "Revokes an access or refresh token and the session it belongs to (RFC 7009).", ["token"],
                ("token", "The token."), ("token_type_hint", "access_token or refresh_token."),
                ("client_id", "The client the token was issued to."), ("client_secret", "A confidential client's secret.")),
            "Revoke a token", new OpenApiResponse { Description = "Revoked, or not a token of this client (RFC 7009 §2.2: the same answer)." },
            ("400", "invalid_request."), ("401", "invalid_client."));
        document.Paths[TokenServices.IntrospectionPath] = oauth.Path(HttpMethod.Post, Operations.Form(
                "Tells a confidential client whether a token is active (RFC 7662).", ["token"],
                ("token", "The token."), ("token_type_hint", "access_token or refresh_token."),
                ("client_id", "The calling client."), ("client_secret", "Its secret.")),
            "Introspect a token", Operations.Json("active, and the token's claims when it is.", "active", "sub", "client_id", "scope", "exp"),
            ("400", "invalid_request."), ("401", "invalid_client."));
        var userInfo = oauth.Operation("User info", "The signed-in user's claims for the scopes granted (OpenID Connect Core §5.3).",
            Operations.Json("The claims.", "sub", "name", "preferred_username", "email", "email_verified"), secured: true,
            ("401", "No valid access token (WWW-Authenticate says why)."));
        document.Paths[TokenServices.UserInfoPath] = new OpenApiPathItem
        {
            Operations = new Dictionary<HttpMethod, OpenApiOperation> { [HttpMethod.Get] = userInfo, [HttpMethod.Post] = userInfo },
        };
        document.Paths[TokenServices.AuthorizationPath] = oauth.Path(HttpMethod.Get, Operations.Query(
                "Starts a browser sign-in (authorization code with PKCE, OpenID Connect Core §3.1.2): shows the sign-in and consent pages, then redirects to redirect_uri with a code.",
                ["response_type", "client_id", "redirect_uri"],
                ("response_type", "code"), ("client_id", "The client."), ("redirect_uri", "A redirect URI registered for the client."),
                ("scope", "Space-separated scopes, openid for an ID token."), ("state", "Returned unchanged."), ("nonce", "Copied into the ID token."),
                ("code_challenge", "PKCE challenge."), ("code_challenge_method", "S256."), ("prompt", "none, login or consent.")),
            "Authorize (browser)", new OpenApiResponse { Description = "A sign-in or consent page." },
            ("302", "To redirect_uri with code and state, or with error."));
        document.Paths[TokenServices.EndSessionPath] = oauth.Path(HttpMethod.Get, Operations.Query(
                "Ends the browser session (OpenID Connect RP-Initiated Logout).", [],
                ("id_token_hint", "An ID token issued to the client."), ("post_logout_redirect_uri", "A registered post-logout URI."), ("state", "Returned unchanged.")),
            "End session (browser)", new OpenApiResponse { Description = "A confirmation page." }, ("302", "To post_logout_redirect_uri."));
        document.Paths["/.well-known/openid-configuration"] = oauth.Path(HttpMethod.Get, Operations.Query("OpenID Connect discovery: the endpoints, grants and algorithms.", []),
            "Discovery", Operations.Json("The provider metadata.", "issuer", "token_endpoint", "jwks_uri"));
        document.Paths[TokenServices.JwksPath] = oauth.Path(HttpMethod.Get, Operations.Query("The public keys that verify Portcullis's tokens.", []),
            "Signing keys", Operations.Json("A JSON Web Key Set.", "keys"));
        return Task.CompletedTask;
    }

    /// <summary>Small builders for the hand-written operations, so the table above reads as the endpoints' summary.</summary>
    private sealed class Operations(OpenApiDocument document)
    {
        private static readonly OpenApiSchema Text = new() { Type = JsonSchemaType.String };

        public static (string Description, OpenApiRequestBody? Body, List<IOpenApiParameter>? Parameters) Form(string description, string[] required, params (string Name, string Description)[] fields) =>
            (description, new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/x-www-form-urlencoded"] = new()
                    {
                        Schema = new OpenApiSchema
                        {
                            Type = JsonSchemaType.Object,
                            Properties = fields.ToDictionary(f => f.Name, f => (IOpenApiSchema)new OpenApiSchema { Type = JsonSchemaType.String, Description = f.Description }),
                            Required = new HashSet<string>(required),
                        },
                    },
                },
            }, null);

        public static (string Description, OpenApiRequestBody? Body, List<IOpenApiParameter>? Parameters) Query(string description, string[] required, params (string Name, string Description)[] fields) =>
            (description, null, [.. fields.Select(f => (IOpenApiParameter)new OpenApiParameter
            {
                Name = f.Name,
                In = ParameterLocation.Query,
                Description = f.Description,
                Required = required.Contains(f.Name),
                Schema = Text,
            })]);

        public static OpenApiResponse Json(string description, params string[] properties) => new()
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new()
                {
                    Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = properties.ToDictionary(p => p, _ => (IOpenApiSchema)new OpenApiSchema()),
                    },
                },
            },
        };

        public OpenApiPathItem Path(HttpMethod method, (string Description, OpenApiRequestBody? Body, List<IOpenApiParameter>? Parameters) request,
            string summary, OpenApiResponse ok, params (string Status, string Description)[] errors)
        {
            var operation = Operation(summary, request.Description, ok, secured: false, errors);
            operation.RequestBody = request.Body;
            operation.Parameters = request.Parameters;
            return new OpenApiPathItem { Operations = new Dictionary<HttpMethod, OpenApiOperation> { [method] = operation } };
        }

        public OpenApiOperation Operation(string summary, string description, OpenApiResponse ok, bool secured, params (string Status, string Description)[] errors)
        {
            var responses = new OpenApiResponses { ["200"] = ok };
            foreach (var (status, text) in errors)
            {
                responses[status] = new OpenApiResponse { Description = text };
            }

            return new OpenApiOperation
            {
                Summary = summary,
                Description = description,
                Tags = new HashSet<OpenApiTagReference> { new(Tag, document) },
                Responses = responses,
                Security = secured ? Requirements(document) : [],
                Extensions = new Dictionary<string, IOpenApiExtension> { ["x-served-by"] = new JsonNodeExtension(JsonValue.Create("OpenIddict")) },
            };
        }
    }
}
