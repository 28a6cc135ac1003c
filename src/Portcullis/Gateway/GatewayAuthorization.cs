using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Hosting;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.Gateway;

/// <summary>A gateway route's requirement: at least one of <see cref="Roles"/> (if any) and every one of <see cref="Scopes"/>.</summary>
public sealed record GatewayAccessRequirement(IReadOnlyList<string> Roles, IReadOnlyList<string> Scopes) : IAuthorizationRequirement;

/// <summary>The verified caller as the gateway forwards it; worked out once per request by the handler.</summary>
public sealed record GatewayCaller(string? UserId, string? ClientId, IReadOnlyList<string> Roles, IReadOnlyList<string> Scopes)
{
    private const string ItemKey = "Portcullis.Gateway.Caller";

    public static GatewayCaller? Cached(HttpContext context) => context.Items[ItemKey] as GatewayCaller;

    /// <summary>
    /// Roles are the user's current roles from the cached server-side state (a removed role stops working at once),
    /// never the token's role claims; scopes are the token's. A client token has no roles.
    /// </summary>
    public static async ValueTask<GatewayCaller?> ResolveAsync(HttpContext context, ClaimsPrincipal user)
    {
        if (Cached(context) is { } cached)
        {
            return cached;
        }

        if (user.Identity?.IsAuthenticated != true)
        {
            return null;
        }

        var scopes = new List<string>();
        foreach (var claim in user.FindAll(Claims.Scope))
        {
            foreach (var scope in claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!scopes.Contains(scope)) // ordinal: string equality
                {
                    scopes.Add(scope);
                }
            }
        }

        var client = user.FindFirstValue(Claims.ClientId);
        IReadOnlyList<string> roles = [];
        string? userId = null;
        if (user.UserId() is { } id)
        {
            var state = await context.RequestServices.GetRequiredService<RevocationState>().GetUserAsync(id, context.RequestAborted);
            if (!state.Active)
            {
                return null;
            }

            userId = id.ToString();
            roles = state.Roles;
        }

        var caller = new GatewayCaller(userId, client, roles, scopes);
        context.Items[ItemKey] = caller;
        return caller;
    }

    public IReadOnlyList<string> MissingRoles(GatewayAccessRequirement requirement) =>
        requirement.Roles.Count == 0 || requirement.Roles.Any(r => Roles.Contains(r, StringComparer.Ordinal)) ? [] : requirement.Roles;

    public IReadOnlyList<string> MissingScopes(GatewayAccessRequirement requirement) =>
        [.. requirement.Scopes.Where(s => !Scopes.Contains(s, StringComparer.Ordinal))];
}

public sealed class GatewayAccessHandler : AuthorizationHandler<GatewayAccessRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, GatewayAccessRequirement requirement)
    {
        if (context.Resource is not HttpContext http || await GatewayCaller.ResolveAsync(http, context.User) is not { } caller)
        {
            return;
        }

        if (caller.MissingRoles(requirement).Count == 0 && caller.MissingScopes(requirement).Count == 0)
        {
            context.Succeed(requirement);
        }
    }
}

/// <summary>
/// Resolves <c>gateway:{generation}:{route}</c> to the route's policy in the current snapshot, so a reload can change a
/// route's requirements; every other name goes to the default provider. A name from a superseded generation (a
/// request that matched just before a reload) resolves to a policy nobody meets.
/// </summary>
public sealed class GatewayPolicyProvider(IOptions<AuthorizationOptions> options, GatewayConfigProvider routes) : DefaultAuthorizationPolicyProvider(options)
{
    private static readonly AuthorizationPolicy Nobody = new AuthorizationPolicyBuilder().RequireAssertion(_ => false).Build();

    /// <summary>
    /// The base class allows the middleware's per-endpoint policy cache only for itself, not for subclasses; it is
    /// safe here because a gateway policy name carries its generation and YARP builds new endpoints on reload.
    /// Without this every request to every endpoint would combine its policies afresh.
    /// </summary>
    public override bool AllowsCachingPolicies => true;

    public override Task<AuthorizationPolicy?> GetPolicyAsync(string policyName)
    {
        if (policyName.StartsWith(GatewayRouteCompiler.PolicyPrefix, StringComparison.Ordinal))
        {
            return Task.FromResult<AuthorizationPolicy?>(routes.Current.ByPolicy.TryGetValue(policyName, out var route) ? route.Policy : Nobody);
        }

        return base.GetPolicyAsync(policyName);
    }
}

/// <summary>
/// A gateway 403 is problem+json naming the missing role or scope (as the API names a missing permission) and an
/// audit event; everything else goes to Portcullis's own handler.
/// </summary>
public sealed class GatewayAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly ProblemAuthorizationResultHandler _inner = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Challenged && context.GetEndpoint()?.Metadata.GetMetadata<GatewayRoute>() is { } challenged)
        {
            // A gateway request without a valid token: the same 401 as the API (below), plus an aggregated audit event.
            if (context.RequestServices.GetRequiredService<Audit.DenialAggregator>().Denied(Audit.AuditEvents.GatewayUnauthenticated,
                    Audit.AuditLog.ActorOf(context.User), context.Request.Method, $"route:{challenged.Name}", "token", context.Connection.RemoteIpAddress?.ToString()))
            {
                await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayUnauthenticated, challenged.Name, new { method = context.Request.Method });
            }
        }

        if (authorizeResult.Forbidden
            && authorizeResult.AuthorizationFailure?.FailedRequirements.OfType<GatewayAccessRequirement>().FirstOrDefault() is { } requirement)
        {
            var caller = GatewayCaller.Cached(context);
            var missingRoles = caller?.MissingRoles(requirement) ?? requirement.Roles;
            var missingScopes = caller?.MissingScopes(requirement) ?? requirement.Scopes;
            var route = context.GetEndpoint()?.Metadata.GetMetadata<GatewayRoute>();
            // Counted (metric) and audited through the denial aggregator: the first of its kind in a minute now, the
            // repeats as one counted event (docs/audit-events.md), so a caller hammering a route cannot flood the store.
            var missing = string.Join(' ', missingRoles.Select(r => "role:" + r).Concat(missingScopes.Select(s => "scope:" + s)));
            if (context.RequestServices.GetRequiredService<Audit.DenialAggregator>().Denied(Audit.AuditEvents.GatewayDenied,
                    Audit.AuditLog.ActorOf(context.User), context.Request.Method, $"route:{route?.Name}", missing, context.Connection.RemoteIpAddress?.ToString()))
            {
                await GatewayAudit.WriteAsync(context, Audit.AuditEvents.GatewayDenied, route?.Name,
                    new { method = context.Request.Method, missingRoles, missingScopes });
            }
            var extensions = new Dictionary<string, object?>();
            if (missingRoles.Count > 0)
            {
                extensions["missingRole"] = missingRoles;
            }

            if (missingScopes.Count > 0)
            {
                extensions["missingScope"] = missingScopes;
            }

            await Results.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "You do not have the role or scope this requires.",
                type: ProblemTypes.Forbidden,
                extensions: extensions).ExecuteAsync(context);
            return;
        }

        await _inner.HandleAsync(next, context, policy, authorizeResult);
    }
}
