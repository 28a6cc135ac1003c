using Microsoft.AspNetCore.Http.HttpResults;
using Portcullis.Hosting;
using static Portcullis.Admin.UserAdministration;

namespace Portcullis.Admin;

/// <summary><c>/api/admin/users</c>: list and search (cursor-paged), read, disable, enable, delete, sessions, roles.</summary>
public static class AdminUsers
{
    public const int DefaultPageSize = 50;

    public static async Task<Results<Ok<Page<UserView>>, ValidationProblem>> ListAsync(
        UserAdministration admin, string? search, string? cursor, int? limit, CancellationToken ct)
    {
        var size = limit ?? DefaultPageSize;
        if (size is < 1 or > MaxPageSize)
        {
            return JsonBody.Invalid("limit", $"The page size is 1 to {MaxPageSize}.");
        }

        if (search is { Length: > 64 })
        {
            return JsonBody.Invalid("search", "The search text has at most 64 characters.");
        }

        string? after = null;
        if (cursor is not null && !Cursor.TryDecode(cursor, out after))
        {
            return JsonBody.Invalid("cursor", "The cursor is not valid.");
        }

        var page = await admin.ListAsync(search, after, size, ct);
        return TypedResults.Ok(page with { Next = page.Next is null ? null : Cursor.Encode(page.Next) });
    }

    public static async Task<Results<Ok<UserView>, ProblemHttpResult>> GetAsync(Guid id, UserAdministration admin) =>
        await admin.GetAsync(id) is { } user ? TypedResults.Ok(user) : AdminEndpoints.NotFound();

    public static async Task<Results<NoContent, ProblemHttpResult>> DisableAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.SetDisabledAsync(id, true, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> EnableAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.SetDisabledAsync(id, false, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> RequirePasswordChangeAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.RequirePasswordChangeAsync(id, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.DeleteAsync(id, ct));

    public static async Task<Results<Ok<IReadOnlyList<SessionView>>, ProblemHttpResult>> SessionsAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        await admin.FindAsync(id) is null ? AdminEndpoints.NotFound() : TypedResults.Ok(await admin.SessionsAsync(id, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> EndSessionsAsync(Guid id, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.EndSessionsAsync(id, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> EndSessionAsync(Guid id, string sessionId, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.EndSessionAsync(id, sessionId, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> AssignRoleAsync(Guid id, string role, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.AssignRoleAsync(id, role, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> RemoveRoleAsync(Guid id, string role, UserAdministration admin, CancellationToken ct) =>
        Answer(await admin.RemoveRoleAsync(id, role, ct));

    private static Results<NoContent, ProblemHttpResult> Answer(Outcome outcome) => outcome switch
    {
        Outcome.Done => TypedResults.NoContent(),
        Outcome.LastAdmin => AdminEndpoints.LastAdmin(),
        Outcome.UnknownRole => AdminEndpoints.Problem(404, "No such role."),
        _ => AdminEndpoints.NotFound(),
    };
}

/// <summary>Opaque cursors: base64url of the last key seen, so clients cannot depend on its form.</summary>
internal static class Cursor
{
    public static string Encode(string key) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(key);

    public static bool TryDecode(string cursor, out string? key)
    {
        key = null;
        if (cursor.Length > 400)
        {
            return false;
        }

        try
        {
            key = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(cursor);
            return key.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
