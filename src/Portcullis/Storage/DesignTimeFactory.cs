using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Portcullis.Storage;

/// <summary>
/// For <c>dotnet ef migrations add --context SqlitePortcullisDb</c>: the model without starting the server.
/// </summary>
public sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqlitePortcullisDb>
{
    public SqlitePortcullisDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqlitePortcullisDb>().UseSqlite("Data Source=design-time.db").UseOpenIddict().Options);
}

/// <summary>
/// For <c>dotnet ef migrations add --context PostgresPortcullisDb</c>: no server is contacted to build the model.
/// </summary>
public sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresPortcullisDb>
{
    public PostgresPortcullisDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresPortcullisDb>().UseNpgsql("Host=127.0.0.1;Database=portcullis_design_time").UseOpenIddict().Options);
}
