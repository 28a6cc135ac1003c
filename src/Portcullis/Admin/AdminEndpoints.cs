using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Access;
using Portcullis.Audit;
using Portcullis.Hosting;
using Portcullis.RateLimits;

namespace Portcullis.Admin;

/// <summary>
/// The admin API: every route names the permission it requires.
/// <para>
/// Owns <c>/api/admin</c>: users (disable, enable, delete, roles, sessions, required password change), custom roles,
/// clients and their secrets, signing keys, the permission list, and the audit query mounted in this group; and the
/// services the CLI shares with it (<see cref="UserAdministration"/>, <see cref="RoleAdministration"/>,
/// <see cref="ClientAdministration"/>), so an operator's command and an API call do the same thing.
/// </para>
/// <para>
/// Uses Access (permissions, roles, the role-permission cache, <c>RevocationState</c>), Accounts (ending sessions, username rules), Audit
/// (events and the query), Storage (the DbContext, store locks), Tokens (the key ring),
/// RateLimits (policy names) and Hosting (JSON bodies, problem types).
/// </para>
/// </summary>
public static class AdminEndpoints
{
    public static IServiceCollection AddPortcullisAdmin(this IServiceCollection services)
    {
        services.AddScoped<UserAdministration>();
        services.AddScoped<RoleAdministration>();
        services.AddScoped<ClientAdministration>();
        return services;
    }

    public static IEndpointRouteBuilder MapAdmin(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin")
            .RequireAuthorization()
            .RequireRateLimiting(RateLimitPolicies.Authenticated)
            .AddEndpointFilter(RejectRepeatedQueryKeys)
            // No .Accepts<>(): its routing-level 415 would answer before the permission check. JsonBody checks the type.
            .WithTags("Admin");

        admin.MapGet("/permissions", () => TypedResults.Ok(Permissions.All.Select(p => new { name = p.Key, description = p.Value })))
            .RequirePermission(Permissions.RolesRead);

        var users = admin.MapGroup("/users");
        users.MapGet("/", AdminUsers.ListAsync).RequirePermission(Permissions.UsersRead);
        users.MapGet("/{id:guid}", AdminUsers.GetAsync).RequirePermission(Permissions.UsersRead);
        users.MapPost("/{id:guid}/disable", AdminUsers.DisableAsync).RequirePermission(Permissions.UsersWrite);
        users.MapPost("/{id:guid}/enable", AdminUsers.EnableAsync).RequirePermission(Permissions.UsersWrite);
        users.MapDelete("/{id:guid}", AdminUsers.DeleteAsync).RequirePermission(Permissions.UsersWrite);
        users.MapPost("/{id:guid}/require-password-change", AdminUsers.RequirePasswordChangeAsync).RequirePermission(Permissions.UsersWrite);
        users.MapGet("/{id:guid}/sessions", AdminUsers.SessionsAsync).RequirePermission(Permissions.UsersRead);
        users.MapDelete("/{id:guid}/sessions", AdminUsers.EndSessionsAsync).RequirePermission(Permissions.UsersWrite);
        users.MapDelete("/{id:guid}/sessions/{sessionId}", AdminUsers.EndSessionAsync).RequirePermission(Permissions.UsersWrite);
        users.MapPut("/{id:guid}/roles/{role}", AdminUsers.AssignRoleAsync).RequirePermission(Permissions.UsersWrite);
        users.MapDelete("/{id:guid}/roles/{role}", AdminUsers.RemoveRoleAsync).RequirePermission(Permissions.UsersWrite);

        var roles = admin.MapGroup("/roles");
        roles.MapGet("/", AdminRoles.ListAsync).RequirePermission(Permissions.RolesRead);
        roles.MapGet("/{name}", AdminRoles.GetAsync).RequirePermission(Permissions.RolesRead);
        roles.MapPost("/", AdminRoles.CreateAsync).RequirePermission(Permissions.RolesWrite);
        roles.MapPut("/{name}", AdminRoles.UpdateAsync).RequirePermission(Permissions.RolesWrite);
        roles.MapDelete("/{name}", AdminRoles.DeleteAsync).RequirePermission(Permissions.RolesWrite);

        var clients = admin.MapGroup("/clients");
        clients.MapGet("/", AdminClients.ListAsync).RequirePermission(Permissions.ClientsRead);
        clients.MapPost("/", AdminClients.CreateAsync).RequirePermission(Permissions.ClientsWrite);
        clients.MapDelete("/{clientId}", AdminClients.DeleteAsync).RequirePermission(Permissions.ClientsWrite);
        clients.MapPost("/{clientId}/secret", AdminClients.RotateSecretAsync).RequirePermission(Permissions.ClientsWrite);

        var keys = admin.MapGroup("/keys");
        keys.MapGet("/", AdminKeys.ListAsync).RequirePermission(Permissions.KeysRead);
        keys.MapPost("/rotate", AdminKeys.RotateAsync).RequirePermission(Permissions.KeysRotate);

        // The audit query is an admin call: inside the group, so its rules (repeated query keys refused) cover it too.
        admin.MapGroup("/audit").MapAuditQuery();
        return app;
    }

    /// <summary>HTTP parameter pollution (VAL-09): a query key given twice is refused, not merged or guessed.</summary>
    private static async ValueTask<object?> RejectRepeatedQueryKeys(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (context.HttpContext.Request.Query.FirstOrDefault(q => q.Value.Count > 1) is { Key: { } key })
        {
            return JsonBody.Invalid(key, "The query parameter is given more than once.");
        }

        return await next(context);
    }

    internal static ProblemHttpResult Problem(int status, string title) =>
        TypedResults.Problem(statusCode: status, title: title, type: ProblemTypes.ForStatus(status));

    internal static ProblemHttpResult NotFound() => Problem(404, "Not found.");

    internal static ProblemHttpResult LastAdmin() =>
        Problem(409, "This would leave no enabled administrator: promote another administrator first.");
}
