using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Portcullis.Hosting;

namespace Portcullis.Access;

/// <summary>Built-in roles. There is never a default account holding them.</summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string User = "user";
    public static readonly string[] All = [Admin, User];

    public static bool IsBuiltIn(string role) => role is Admin or User;
}

/// <summary>
/// Authorization policy names. Endpoints refer to these; the fallback denies everything else.
/// <para>
/// The access feature owns who may do what: built-in roles, the permission catalogue (<see cref="Permissions"/>),
/// the permissions of each role read from the database and cached (<see cref="RolePermissions"/>), the policies
/// (deny by default, the user policy, <c>RequirePermission</c>) and the 401/403 problem answers; and what every
/// feature needs to know about the caller: the private claim names (<see cref="PortcullisClaims"/>), the caller's
/// user id (<see cref="CallerClaims"/>), and what makes a live token, session or user invalid, kept in memory
/// (<see cref="RevocationState"/>; the tokens feature reads its feed).
/// </para>
/// <para>
/// Uses Storage (roles, the revocation feed), Audit (denials, aggregated) and Hosting (problem types, metrics).
/// </para>
/// </summary>
public static class Policies
{
    /// <summary>A signed-in user (a token issued to a person, not to a client).</summary>
    public const string User = "user";

    public static IServiceCollection AddPortcullisAuthorization(this IServiceCollection services)
    {
        var builder = services.AddAuthorizationBuilder()
            // Deny by default: an endpoint that states nothing requires an authenticated caller.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(JwtBearerDefaults.AuthenticationScheme).RequireAuthenticatedUser().Build())
            .AddPolicy(User, policy => policy
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => context.User.UserId() is not null));
        foreach (var permission in Permissions.All.Keys)
        {
            builder.AddPolicy(Permissions.Policy(permission), policy => policy
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .AddRequirements(new PermissionRequirement(permission)));
        }

        services.AddSingleton<RolePermissions>();
        services.AddScoped<IAuthorizationHandler, PermissionHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, ProblemAuthorizationResultHandler>();
        return services;
    }

    /// <summary>Requires a permission from the catalogue; the 403 names it, and the OpenAPI document shows it.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, string permission) where TBuilder : IEndpointConventionBuilder
    {
        if (!Permissions.IsKnown(permission))
        {
            throw new ArgumentException($"'{permission}' is not in the permission catalogue.", nameof(permission));
        }

        builder.RequireAuthorization(Permissions.Policy(permission));
        builder.WithMetadata(new PermissionMetadata(permission));
        builder.Add(endpoint =>
        {
            // OpenAPI: the operation description states the permission.
            endpoint.Metadata.Add(new EndpointDescriptionAttribute($"Requires the permission `{permission}`."));
        });
        return builder;
    }
}

/// <summary>Endpoint metadata: the permission an endpoint requires.</summary>
public sealed record PermissionMetadata(string Permission);

public sealed record PermissionRequirement(string Permission) : IAuthorizationRequirement;

/// <summary>Checks a permission against the caller's current roles (server-side, cached; never the token's claims).</summary>
public sealed class PermissionHandler(RolePermissions permissions) : AuthorizationHandler<PermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        var ct = (context.Resource as HttpContext)?.RequestAborted ?? CancellationToken.None;
        if ((await permissions.ForCallerAsync(context.User, ct)).Contains(requirement.Permission))
        {
            context.Succeed(requirement);
        }
    }
}

/// <summary>401 and 403 as problem details; a 403 names the missing permission and nothing else.</summary>
public sealed class ProblemAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden && authorizeResult.AuthorizationFailure?.FailedRequirements.OfType<PermissionRequirement>().FirstOrDefault() is { } missing)
        {
            try
            {
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "(no route)";
                // Repeats of the same denial are counted and written once per interval (Audit/DenialAggregator.cs).
                if (context.RequestServices.GetRequiredService<Audit.DenialAggregator>().Denied(
                        Audit.AuditLog.ActorOf(context.User), context.Request.Method, route, missing.Permission, context.Connection.RemoteIpAddress?.ToString()))
                {
                    await context.RequestServices.GetRequiredService<Audit.AuditLog>().WriteAsync(
                        Audit.AuditEvents.AccessDenied, Audit.AuditOutcomes.Denied, route,
                        new { method = context.Request.Method, missingPermission = missing.Permission }, context.RequestAborted);
                }
            }
#pragma warning disable CA1031 // A failing audit store must not change the decision: the 403 stands.
            catch (Exception)
#pragma warning restore CA1031
            {
                context.RequestServices.GetRequiredService<PortcullisMetrics>().AuditWriteFailures.Add(1);
            }

            await Results.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "You do not have the permission this requires.",
                type: ProblemTypes.Forbidden,
                extensions: new Dictionary<string, object?> { ["missingPermission"] = missing.Permission })
                .ExecuteAsync(context);
            return;
        }

        await _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
