using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Hosting;
using static Portcullis.Admin.ClientAdministration;

namespace Portcullis.Admin;

/// <summary>
/// <c>/api/admin/clients</c>: services (client credentials) and applications that sign people in (redirect URIs); a
/// secret appears only in the answer that creates it.
/// </summary>
public static class AdminClients
{
    public sealed record CreateRequest(
        string Name, IReadOnlyList<string> Scopes, string? Type = null, IReadOnlyList<string>? RedirectUris = null,
        IReadOnlyList<string>? PostLogoutRedirectUris = null, bool FirstParty = false, bool AllowNoPkce = false);

    public static async Task<Ok<IReadOnlyList<ClientView>>> ListAsync(ClientAdministration clients, CancellationToken ct) =>
        TypedResults.Ok(await clients.ListAsync(ct));

    public static async Task<Results<Created<ClientSecret>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        HttpContext http, ClientAdministration clients, CancellationToken ct)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreateRequest>(http);
        if (problem is not null)
        {
            return problem is ValidationProblem v ? v : (ProblemHttpResult)problem;
        }

        var spec = new ClientSpec(
            request!.Name, request.Scopes ?? [], request.Type ?? OpenIddict.Abstractions.OpenIddictConstants.ClientTypes.Confidential,
            request.RedirectUris, request.PostLogoutRedirectUris, request.FirstParty, request.AllowNoPkce);
        if (Validate(spec) is var (field, error))
        {
            return JsonBody.Invalid(field, error);
        }

        var created = await clients.CreateAsync(spec, ct);
        return TypedResults.Created($"/api/admin/clients/{created.ClientId}", created);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(string clientId, ClientAdministration clients, CancellationToken ct) =>
        await clients.DeleteAsync(clientId, ct) switch
        {
            true => TypedResults.NoContent(),
            false => AdminEndpoints.Problem(409, "The built-in client is configuration: set Clients:BuiltInClient=false to remove it."),
            null => AdminEndpoints.NotFound(),
        };

    public static async Task<Results<Ok<ClientSecret>, ProblemHttpResult>> RotateSecretAsync(string clientId, ClientAdministration clients, CancellationToken ct) =>
        await clients.RotateSecretAsync(clientId, ct) is { } rotated ? TypedResults.Ok(rotated) : AdminEndpoints.NotFound();
}
