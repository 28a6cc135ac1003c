using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Portcullis.Access;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Admin;

/// <summary>
/// Generated from the endpoint list, so a new permission-protected route cannot be forgotten: each is called
/// anonymously (401), as a user without the permission (403 naming exactly that permission), and as a holder of a
/// role with only that permission (the check passes).
/// </summary>
public sealed partial class PermissionMatrixTests(AdminFixture fixture) : IClassFixture<AdminFixture>
{
    private sealed record Route(string Method, string Pattern, string Permission);

    private List<Route> ProtectedRoutes() =>
        [.. fixture.Server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<PermissionMetadata>() is not null)
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => new Route(m, "/" + e.RoutePattern.RawText!.TrimStart('/'), e.Metadata.GetMetadata<PermissionMetadata>()!.Permission)))];

    private static string Fill(string pattern, Guid userId) =>
        ParameterPattern().Replace(pattern, m => m.Groups[1].Value switch
        {
            "id" => userId.ToString(),
            "role" or "name" => "no-such-role",
            "clientId" => "no-such-client",
            _ => "no-such-" + m.Groups[1].Value,
        }).TrimEnd('/');

    [GeneratedRegex(@"\{(\w+)(:[^}]*)?\}")]
    private static partial Regex ParameterPattern();

    [Fact]
    public void Every_admin_route_requires_a_catalogue_permission()
    {
        var adminRoutes = fixture.Server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.TrimStart('/').StartsWith("api/admin", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(adminRoutes);
        Assert.All(adminRoutes, e => Assert.NotNull(e.Metadata.GetMetadata<PermissionMetadata>()));
        Assert.All(ProtectedRoutes(), r => Assert.True(Permissions.IsKnown(r.Permission)));
    }

    [Fact]
    public async Task Every_protected_route_is_401_anonymous_403_without_the_permission_and_passes_with_it()
    {
        var http = fixture.Client;
        var (targetId, _, _) = await http.NewUserAsync("target");
        var (_, _, plain) = await http.NewUserAsync("plain");
        var adminToken = await fixture.AdminTokenAsync();
        var failures = new List<string>();

        foreach (var permissionGroup in ProtectedRoutes().GroupBy(r => r.Permission))
        {
            // A holder: a user whose only role carries exactly this permission.
            var role = "only-" + permissionGroup.Key.Replace(':', '-');
            using (var created = await http.SendAsync(HttpMethod.Post, "api/admin/roles", adminToken, new { name = role, permissions = new[] { permissionGroup.Key } }))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            var (holderId, holderName, _) = await http.NewUserAsync("holder");
            using (var granted = await http.SendAsync(HttpMethod.Put, $"api/admin/users/{holderId}/roles/{role}", adminToken))
            {
                Assert.Equal(HttpStatusCode.NoContent, granted.StatusCode);
            }

            var holder = (await http.LoginAsync(holderName)).AccessToken;
            foreach (var route in permissionGroup)
            {
                // Destructive routes act on a user that exists only for this call.
                var victim = route.Method is "DELETE" or "POST" or "PUT" ? (await http.NewUserAsync("victim")).Id : targetId;
                var path = Fill(route.Pattern, victim);
                var method = new HttpMethod(route.Method);
                var body = route.Method is "POST" or "PUT" ? new { } : null;

                using var anonymous = await http.SendAsync(method, path, null, body);
                if (anonymous.StatusCode != HttpStatusCode.Unauthorized)
                {
                    failures.Add($"{route.Method} {path} anonymous: {(int)anonymous.StatusCode}");
                }

                using var forbidden = await http.SendAsync(method, path, plain.AccessToken, body);
                var problem = forbidden.StatusCode == HttpStatusCode.Forbidden ? await forbidden.JsonAsync() : default;
                if (forbidden.StatusCode != HttpStatusCode.Forbidden || problem.GetProperty("missingPermission").GetString() != route.Permission)
                {
                    failures.Add($"{route.Method} {path} without permission: {(int)forbidden.StatusCode}");
                }

                using var allowed = await http.SendAsync(method, path, holder, body);
                var status = (int)allowed.StatusCode;
                var ok = route.Method == "GET" && !route.Pattern.Contains("{name}", StringComparison.Ordinal)
                    ? status == 200
                    : status is not (401 or 403) and < 500;
                if (!ok)
                {
                    failures.Add($"{route.Method} {path} as holder of {route.Permission}: {status}");
                }
            }
        }

        Assert.Empty(failures);
    }
}
