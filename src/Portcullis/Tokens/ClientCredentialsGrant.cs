using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using Portcullis.Audit;
using Portcullis.Hosting;

namespace Portcullis.Tokens;

/// <summary>
/// <c>grant_type=client_credentials</c>: a confidential client acting for itself. OpenIddict has authenticated the
/// client and checked its grant and scope permissions, so nothing is left to refuse here.
/// </summary>
public sealed class ClientCredentialsGrant(IOptions<TokensOptions> options, AuditLog audit, PortcullisMetrics metrics)
{
    public SignInHttpResult Handle(OpenIddictRequest request)
    {
        var principal = new ClaimsPrincipal(TokenPrincipals.ClientIdentity(request.ClientId));
        principal.SetScopes(request.GetScopes());
        principal.SetResources(options.Value.Audience);
        TokenPrincipals.SetDestinations(principal);
        metrics.TokensIssued.Add(1, new KeyValuePair<string, object?>("grant_type", "client_credentials"));
        audit.Record(AuditEvents.TokenIssued, AuditOutcomes.Success, $"client:{request.ClientId}",
            new { grant = "client_credentials", scopes = principal.GetScopes() }, actor: $"client:{request.ClientId}");
        return TypedResults.SignIn(principal, authenticationScheme: OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }
}
