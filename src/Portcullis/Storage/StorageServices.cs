using Microsoft.EntityFrameworkCore;
using Npgsql;
using Portcullis.Hosting;

namespace Portcullis.Storage;

public static class StorageServices
{
    /// <summary>
    /// Registers <see cref="PortcullisDb"/> for the configured provider. Code asks for <see cref="PortcullisDb"/>;
    /// the provider-specific subclass only selects the migration set.
    /// </summary>
    public static IServiceCollection AddPortcullisStorage(this IServiceCollection services, StorageOptions storage, string dataDirectory)
    {
        if (storage.IsPostgres)
        {
            var connection = PostgresConnectionString(storage);
            services.AddDbContext<PortcullisDb, PostgresPortcullisDb>(db => db.UseNpgsql(connection, npgsql => npgsql.CommandTimeout(storage.TimeoutSeconds)));
        }
        else
        {
            var connection = storage.ConnectionString ?? DefaultSqliteConnectionString(dataDirectory);
            var settings = new SqliteConnectionSettings(storage);
            services.AddDbContext<PortcullisDb, SqlitePortcullisDb>(db => db.UseSqlite(connection).AddInterceptors(settings));
        }

        return services;
    }

    /// <summary>SQLite without Storage:ConnectionString: the file in the data directory.</summary>
    public static string DefaultSqliteConnectionString(string dataDirectory) =>
        $"Data Source={Path.Combine(dataDirectory, "portcullis.db")};Default Timeout=30;Pooling=True";

    /// <summary>The configured connection string with Storage:TimeoutSeconds as the connect timeout unless it sets one.</summary>
    public static string PostgresConnectionString(StorageOptions storage)
    {
        if (string.IsNullOrWhiteSpace(storage.ConnectionString))
        {
            return ""; // StorageOptionsValidator reports the missing setting before anything connects.
        }

        var builder = new NpgsqlConnectionStringBuilder(storage.ConnectionString);
        if (!ContainsKey(storage.ConnectionString, "Timeout"))
        {
            builder.Timeout = storage.TimeoutSeconds;
        }

        return builder.ConnectionString;
    }

    private static bool ContainsKey(string connectionString, string key) =>
        connectionString.Split(';').Any(part => part.Split('=')[0].Trim().Equals(key, StringComparison.OrdinalIgnoreCase));
}
