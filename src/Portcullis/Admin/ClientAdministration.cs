using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Admin;

/// <summary>
/// OAuth clients. Without redirect URIs, a confidential client for the client-credentials grant (a service); with
/// them, an application that signs people in with the authorization-code flow and PKCE — public (a single-page or
/// native app, no secret) or confidential (a server-side web app). Secrets are 256-bit random, shown once, and stored
/// only as OpenIddict's hash. Scopes are created in the scope store on first use.
/// </summary>
public sealed class ClientAdministration(
    IOpenIddictApplicationManager applications, IOpenIddictScopeManager scopes, Audit.AuditLog audit, Storage.PortcullisDb db)
{
    public sealed record ClientView(
        string ClientId, string? Name, string? Type, IReadOnlyList<string> Scopes, IReadOnlyList<string> GrantTypes,
        IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris, bool FirstParty);

    /// <summary>The answer that creates a client; <see cref="Secret"/> is null for a public client.</summary>
    public sealed record ClientSecret(
        string ClientId,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Secret);

    /// <summary>What a new client is. <see cref="Type"/> is <c>confidential</c> or <c>public</c>.</summary>
    public sealed record ClientSpec(
        string Name, IReadOnlyList<string> Scopes, string Type = ClientTypes.Confidential,
        IReadOnlyList<string>? RedirectUris = null, IReadOnlyList<string>? PostLogoutRedirectUris = null,
        bool FirstParty = false, bool AllowNoPkce = false);

    /// <summary>Null when the spec is sound, else the field at fault and why.</summary>
    public static (string Field, string Error)? Validate(ClientSpec spec)
    {
        if (string.IsNullOrWhiteSpace(spec.Name) || spec.Name.Length > 100 || spec.Name.Any(char.IsControl))
        {
            return ("name", "A client name has 1 to 100 characters and no control characters.");
        }

        if (ValidateScopes(spec.Scopes) is { } scopeError)
        {
            return ("scopes", scopeError);
        }

        if (spec.Type is not (ClientTypes.Confidential or ClientTypes.Public))
        {
            return ("type", "A client type is 'confidential' or 'public'.");
        }

        var redirects = spec.RedirectUris ?? [];
        var logouts = spec.PostLogoutRedirectUris ?? [];
        if (redirects.Count == 0)
        {
            if (spec.Type == ClientTypes.Public)
            {
                return ("redirectUris", "A public client signs people in: give it at least one redirect URI.");
            }

            if (logouts.Count > 0 || spec.FirstParty || spec.AllowNoPkce)
            {
                return ("redirectUris", "Post-logout redirect URIs, first-party and PKCE settings apply to clients with redirect URIs.");
            }
        }

        if (spec.AllowNoPkce && spec.Type == ClientTypes.Public)
        {
            return ("allowNoPkce", "A public client always uses PKCE (RFC 9700 §2.1.1).");
        }

        if (redirects.Count > 10 || logouts.Count > 10)
        {
            return ("redirectUris", "A client has at most 10 redirect URIs of each kind.");
        }

        foreach (var (field, uri) in redirects.Select(u => ("redirectUris", u)).Concat(logouts.Select(u => ("postLogoutRedirectUris", u))))
        {
            if (ValidateRedirectUri(uri) is { } error)
            {
                return (field, error);
            }
        }

        return null;
    }

    /// <summary>
    /// RFC 9700 §2.1 and RFC 8252: an absolute URI without a fragment or user info, on https; http only to the
    /// loopback address (a native app's local listener); or a private-use scheme in reverse-domain form
    /// (<c>com.example.app:/callback</c>). It is later compared as an exact string.
    /// </summary>
    public static string? ValidateRedirectUri(string uri)
    {
        if (uri.Length is 0 or > 2000 || uri.Any(c => c <= ' ' || c >= '\u007f')
            || !Uri.TryCreate(uri, UriKind.Absolute, out var parsed))
        {
            return $"'{Truncate(uri)}' is not an absolute URI of at most 2000 printable characters.";
        }

        if (!string.IsNullOrEmpty(parsed.Fragment) || uri.Contains('#'))
        {
            return $"'{Truncate(uri)}' has a fragment; a redirect URI may not (RFC 6749 §3.1.2).";
        }

        if (!string.IsNullOrEmpty(parsed.UserInfo))
        {
            return $"'{Truncate(uri)}' has user info ('@'); a redirect URI may not.";
        }

        var loopback = parsed.Host is "127.0.0.1" or "[::1]" or "localhost";
        var ok = parsed.Scheme switch
        {
            "https" => true,
            "http" => loopback,
            _ => parsed.Scheme.Contains('.', StringComparison.Ordinal) && parsed.Scheme is not ("javascript" or "data" or "file" or "vbscript"),
        };
        return ok ? null : $"'{Truncate(uri)}' must use https, http on the loopback address, or a private-use scheme such as com.example.app:/callback.";

        static string Truncate(string s) => s.Length > 80 ? s[..80] + "…" : s;
    }

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

    /// <summary>A confidential client for the client-credentials grant (a service).</summary>
    public Task<ClientSecret> CreateAsync(string name, IReadOnlyList<string> requestedScopes, CancellationToken ct) =>
        CreateAsync(new ClientSpec(name, requestedScopes), ct);

    /// <summary>Creates a client from a spec that <see cref="Validate"/> accepted.</summary>
    public async Task<ClientSecret> CreateAsync(ClientSpec spec, CancellationToken ct)
    {
        var signsIn = spec.RedirectUris is { Count: > 0 };
        var clientId = (signsIn ? "app_" : "svc_") + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12));
        var secret = spec.Type == ClientTypes.Confidential ? NewSecret() : null;
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = clientId,
            ClientSecret = secret, // OpenIddict stores only a hash of it.
            ClientType = spec.Type,
            ConsentType = spec.FirstParty ? ConsentTypes.Implicit : ConsentTypes.Explicit,
            DisplayName = spec.Name,
            Permissions = { Permissions.Endpoints.Token, Permissions.Endpoints.Revocation },
        };
        var requested = spec.Scopes.Distinct(StringComparer.Ordinal).ToList();
        if (signsIn)
        {
            // The code flow, refresh tokens only when offline_access is granted, RP-initiated logout; PKCE required.
            descriptor.Permissions.UnionWith([
                Permissions.Endpoints.Authorization, Permissions.Endpoints.EndSession,
                Permissions.GrantTypes.AuthorizationCode, Permissions.ResponseTypes.Code]);
            if (requested.Contains(Tokens.PortcullisScopes.OfflineAccess))
            {
                descriptor.Permissions.Add(Permissions.GrantTypes.RefreshToken);
            }

            descriptor.RedirectUris.UnionWith(spec.RedirectUris!.Select(u => new Uri(u, UriKind.Absolute)));
            descriptor.PostLogoutRedirectUris.UnionWith((spec.PostLogoutRedirectUris ?? []).Select(u => new Uri(u, UriKind.Absolute)));
            if (spec.AllowNoPkce)
            {
                descriptor.Settings[Tokens.ClientSettings.PkceOptional] = "true";
            }
            else
            {
                descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
            }

            if (spec.FirstParty)
            {
                descriptor.Settings[Tokens.ClientSettings.FirstParty] = "true";
            }
        }
        else
        {
            descriptor.Permissions.UnionWith([Permissions.Endpoints.Introspection, Permissions.GrantTypes.ClientCredentials]);
        }

        foreach (var scope in requested)
        {
            if (await scopes.FindByNameAsync(scope, ct) is null)
            {
                await scopes.CreateAsync(new OpenIddictScopeDescriptor { Name = scope }, ct);
            }

            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        // OpenIddict saves the client; the event is staged first so that save carries it.
        audit.Record(Audit.AuditEvents.ClientCreated, Audit.AuditOutcomes.Success, $"client:{clientId}",
            new { name = spec.Name, type = spec.Type, scopes = spec.Scopes, redirectUris = spec.RedirectUris ?? [], firstParty = spec.FirstParty });
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
        var settings = await applications.GetSettingsAsync(application, ct);
        return new ClientView(
            (await applications.GetClientIdAsync(application, ct))!,
            await applications.GetDisplayNameAsync(application, ct),
            await applications.GetClientTypeAsync(application, ct),
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.Scope.Length..])],
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..])],
            [.. await applications.GetRedirectUrisAsync(application, ct)],
            [.. await applications.GetPostLogoutRedirectUrisAsync(application, ct)],
            settings.TryGetValue(Tokens.ClientSettings.FirstParty, out var firstParty) && firstParty == "true");
    }

    private static string NewSecret() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
}
