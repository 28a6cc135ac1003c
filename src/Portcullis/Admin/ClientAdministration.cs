using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Admin;

/// <summary>
/// Confidential OAuth clients for the client-credentials grant. Secrets are 256-bit random, shown once, and
/// stored only as OpenIddict's hash. Scopes are created in the scope store on first use.
/// </summary>
public sealed class ClientAdministration(
    IOpenIddictApplicationManager applications, IOpenIddictScopeManager scopes, Audit.AuditLog audit, Storage.PortcullisDb db)
{
    public sealed record ClientView(string ClientId, string? Name, string? Type, IReadOnlyList<string> Scopes, IReadOnlyList<string> GrantTypes);

    public sealed record ClientSecret(string ClientId, string Secret);

    public static string? ValidateScopes(IReadOnlyList<string> requested) =>
        requested.Any(s => s.Length is 0 or > 64 || !s.All(c => c is > ' ' and < '\u007f' and not '"' and not '\\'))
            ? "A scope is 1 to 64 printable ASCII characters without spaces, quotes or backslashes."
            : null;

    public async Task<IReadOnlyList<ClientView>> ListAsync(CancellationToken ct)
    {
        var result = new List<ClientView>();
        await foreach (var application in applications.ListAsync(count: null, offset: null, ct))
        {
            result.Add(await ViewAsync(application, ct));
        }

        return [.. result.OrderBy(c => c.ClientId, StringComparer.Ordinal)];
    }

    public async Task<ClientSecret> CreateAsync(string name, IReadOnlyList<string> requestedScopes, CancellationToken ct)
    {
        var clientId = "svc_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12));
        var secret = NewSecret();
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            ClientSecret = secret, // OpenIddict stores only a hash of it.
            ClientType = ClientTypes.Confidential,
            DisplayName = name,
            Permissions =
            {
                Permissions.Endpoints.Token, Permissions.Endpoints.Revocation, Permissions.Endpoints.Introspection,
                Permissions.GrantTypes.ClientCredentials,
            },
        };
        foreach (var scope in requestedScopes.Distinct(StringComparer.Ordinal))
        {
            if (await scopes.FindByNameAsync(scope, ct) is null)
            {
                await scopes.CreateAsync(new OpenIddictScopeDescriptor { Name = scope }, ct);
            }

            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        // OpenIddict saves the client; the event is staged first so that save carries it.
        audit.Record(Audit.AuditEvents.ClientCreated, Audit.AuditOutcomes.Success, $"client:{clientId}", new { name, scopes = requestedScopes });
        await applications.CreateAsync(descriptor, ct);
        return new ClientSecret(clientId, secret);
    }

    /// <summary>Null when there is no such client; the built-in client cannot be removed here (it is configuration).</summary>
    public async Task<bool?> DeleteAsync(string clientId, CancellationToken ct)
    {
        if (clientId == PortcullisHost.BuiltInClientId)
        {
            return false;
        }

        if (await applications.FindByClientIdAsync(clientId, ct) is not { } application)
        {
            return null;
        }

        audit.Record(Audit.AuditEvents.ClientDeleted, Audit.AuditOutcomes.Success, $"client:{clientId}");
        await applications.DeleteAsync(application, ct);
        await db.SaveChangesAsync(ct);
        return true;
    }

    /// <summary>A new secret for a confidential client; the old one stops working at once.</summary>
    public async Task<ClientSecret?> RotateSecretAsync(string clientId, CancellationToken ct)
    {
        if (await applications.FindByClientIdAsync(clientId, ct) is not { } application
            || !await applications.HasClientTypeAsync(application, ClientTypes.Confidential, ct))
        {
            return null;
        }

        var descriptor = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(descriptor, application, ct);
        var secret = NewSecret();
        descriptor.ClientSecret = secret;
        audit.Record(Audit.AuditEvents.ClientSecretRotated, Audit.AuditOutcomes.Success, $"client:{clientId}");
        await applications.UpdateAsync(application, descriptor, ct);
        return new ClientSecret(clientId, secret);
    }

    private async Task<ClientView> ViewAsync(object application, CancellationToken ct)
    {
        var permissions = await applications.GetPermissionsAsync(application, ct);
        return new ClientView(
            (await applications.GetClientIdAsync(application, ct))!,
            await applications.GetDisplayNameAsync(application, ct),
            await applications.GetClientTypeAsync(application, ct),
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.Scope.Length..])],
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..])]);
    }

    private static string NewSecret() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
}
