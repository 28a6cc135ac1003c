using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Portcullis.Storage;

/// <summary>For <c>dotnet ef migrations add</c>: the model without starting the server.</summary>
public sealed class DesignTimeFactory : IDesignTimeDbContextFactory<PortcullisDb>
{
    public PortcullisDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PortcullisDb>().UseSqlite("Data Source=design-time.db").UseOpenIddict().Options);
}
