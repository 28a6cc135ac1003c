namespace Portcullis.Access;

/// <summary>
/// The one catalogue of permissions (also in docs/permissions.md; a test keeps the two equal). Roles are named
/// sets of these; OAuth scopes granted to clients carry the same names.
/// </summary>
public static class Permissions
{
    public const string UsersRead = "users:read";
    public const string UsersWrite = "users:write";
    public const string RolesRead = "roles:read";
    public const string RolesWrite = "roles:write";
    public const string ClientsRead = "clients:read";
    public const string ClientsWrite = "clients:write";
    public const string KeysRead = "keys:read";
    public const string KeysRotate = "keys:rotate";
    public const string AuditRead = "audit:read";
    public const string MetricsRead = "metrics:read";

    public static readonly IReadOnlyDictionary<string, string> All = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [UsersRead] = "List, search and read user accounts and their sessions.",
        [UsersWrite] = "Disable, enable and delete users, end their sessions, force a password change, assign and remove roles.",
        [RolesRead] = "List roles and their permissions.",
        [RolesWrite] = "Create, change and delete custom roles.",
        [ClientsRead] = "List OAuth clients.",
        [ClientsWrite] = "Add and remove OAuth clients and rotate their secrets.",
        [KeysRead] = "List token signing keys (public parts only).",
        [KeysRotate] = "Rotate the token signing key.",
        [AuditRead] = "Read and export the audit trail.",
        [MetricsRead] = "Scrape the Prometheus metrics at /metrics.",
    };

    public static bool IsKnown(string permission) => All.ContainsKey(permission);

    /// <summary>The authorization policy name for a permission.</summary>
    public static string Policy(string permission) => "perm:" + permission;
}
