using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Hosting;
using static Portcullis.Admin.RoleAdministration;

namespace Portcullis.Admin;

/// <summary><c>/api/admin/roles</c>: custom roles as named sets of catalogue permissions.</summary>
public static class AdminRoles
{
    public sealed record CreateRequest(string Name, IReadOnlyList<string> Permissions);

    public sealed record UpdateRequest(IReadOnlyList<string> Permissions);

    public static async Task<Ok<IReadOnlyList<RoleView>>> ListAsync(RoleAdministration roles, CancellationToken ct) =>
        TypedResults.Ok(await roles.ListAsync(ct));

    public static async Task<Results<Ok<RoleView>, ProblemHttpResult>> GetAsync(string name, RoleAdministration roles, CancellationToken ct) =>
        await roles.GetAsync(name, ct) is { } role ? TypedResults.Ok(role) : AdminEndpoints.NotFound();

    public static async Task<Results<Created<RoleView>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        HttpContext http, RoleAdministration roles, CancellationToken ct)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateRequest>(http);
        if (problem is not null)
        {
            return problem is ValidationProblem v ? v : (ProblemHttpResult)problem;
        }

        if (Validate(request!.Name, request.Permissions) is { } errors)
        {
            return TypedResults.ValidationProblem(errors, title: "The request is invalid.", type: ProblemTypes.Validation);
        }

        return await roles.CreateAsync(request.Name, request.Permissions, ct) switch
        {
            Outcome.Done => TypedResults.Created($"/api/admin/roles/{request.Name}", (await roles.GetAsync(request.Name, ct))!),
            Outcome.BuiltIn => AdminEndpoints.Problem(409, "Built-in roles cannot be created or changed."),
            _ => AdminEndpoints.Problem(409, "A role with this name exists."),
        };
    }

    public static async Task<Results<Ok<RoleView>, ValidationProblem, ProblemHttpResult>> UpdateAsync(
        string name, HttpContext http, RoleAdministration roles, CancellationToken ct)
    {
        var (request, problem) = await JsonBody.ReadAsync<UpdateRequest>(http);
        if (problem is not null)
        {
            return problem is ValidationProblem v ? v : (ProblemHttpResult)problem;
        }

        if (Validate(null, request!.Permissions) is { } errors)
        {
            return TypedResults.ValidationProblem(errors, title: "The request is invalid.", type: ProblemTypes.Validation);
        }

        return await roles.UpdateAsync(name, request.Permissions, ct) switch
        {
            Outcome.Done => TypedResults.Ok((await roles.GetAsync(name, ct))!),
            Outcome.BuiltIn => AdminEndpoints.Problem(409, "Built-in roles cannot be created or changed."),
            _ => AdminEndpoints.NotFound(),
        };
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string name, RoleAdministration roles, CancellationToken ct) =>
        await roles.DeleteAsync(name, ct) switch
        {
            Outcome.Done => TypedResults.NoContent(),
            Outcome.BuiltIn => AdminEndpoints.Problem(409, "Built-in roles cannot be deleted."),
            _ => AdminEndpoints.NotFound(),
        };
}
