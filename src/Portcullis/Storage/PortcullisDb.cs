using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Portcullis.Storage;

/// <summary>
/// The one EF Core model. Each provider has its own subclass (<see cref="SqlitePortcullisDb"/>,
/// <see cref="PostgresPortcullisDb"/>) only so that each has its own migration set; everything else asks DI for
/// <see cref="PortcullisDb"/>.
/// </summary>
public abstract class PortcullisDb(DbContextOptions options)
    : IdentityDbContext<User, Role, Guid>(options), IDataProtectionKeyContext
{
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();

    public DbSet<Revocation> Revocations => Set<Revocation>();

    public DbSet<OutboxMessage> OutboxMessages => Set<OutboxMessage>();

    public DbSet<AccountToken> AccountTokens => Set<AccountToken>();

    public DbSet<Audit.AuditEvent> AuditEvents => Set<Audit.AuditEvent>();

    public DbSet<Audit.AuditSeal> AuditSeals => Set<Audit.AuditSeal>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();

        builder.Entity<User>(user =>
        {
            user.Property(u => u.UserName).HasMaxLength(64);
            user.Property(u => u.NormalizedUserName).HasMaxLength(64);
            user.Property(u => u.Email).HasMaxLength(254);
            user.Property(u => u.NormalizedEmail).HasMaxLength(254);
            // Identity only indexes the normalized e-mail; uniqueness is enforced here as well.
            user.HasIndex(u => u.NormalizedEmail).IsUnique();
        });

        builder.Entity<SigningKey>(key =>
        {
            key.HasKey(k => k.Id);
            key.Property(k => k.Use).HasMaxLength(8);
            key.Property(k => k.KeyId).HasMaxLength(64);
            key.Property(k => k.Algorithm).HasMaxLength(16);
            key.HasIndex(k => k.KeyId).IsUnique();
        });

        builder.Entity<Audit.AuditEvent>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(64);
            e.Property(x => x.Outcome).HasMaxLength(16);
            e.Property(x => x.Actor).HasMaxLength(200);
            e.Property(x => x.ClientIp).HasMaxLength(64);
            e.Property(x => x.Target).HasMaxLength(200);
            e.Property(x => x.TraceId).HasMaxLength(64);
            e.Property(x => x.Details).HasMaxLength(1024);
            // Query by actor or type, newest first; by time range.
            e.HasIndex(x => new { x.Actor, x.Id });
            e.HasIndex(x => new { x.Name, x.Id });
            e.HasIndex(x => x.Timestamp);
        });

        builder.Entity<Audit.AuditSeal>(s =>
        {
            s.HasKey(x => x.Sequence);
            s.Property(x => x.Sequence).ValueGeneratedNever();
            s.Property(x => x.PreviousHash).HasMaxLength(64);
            s.Property(x => x.Hash).HasMaxLength(64);
            s.HasIndex(x => x.EventId).IsUnique();
        });

        builder.Entity<Revocation>(r =>
        {
            r.HasKey(x => x.Id);
            r.Property(x => x.Kind).HasMaxLength(8);
            r.Property(x => x.Value).HasMaxLength(64);
            r.HasIndex(x => x.ExpiresAt);
        });

        builder.Entity<OutboxMessage>(m =>
        {
            m.HasKey(x => x.Id);
            m.Property(x => x.To).HasMaxLength(254);
            m.Property(x => x.Subject).HasMaxLength(200);
            m.Property(x => x.ProtectedBody).HasMaxLength(16384);
            m.Property(x => x.LastError).HasMaxLength(512);
            // The sender's query: unsent, not given up, due.
            m.HasIndex(x => new { x.SentAt, x.FailedAt, x.NextAttemptAt });
        });

        builder.Entity<AccountToken>(t =>
        {
            t.HasKey(x => x.Id);
            t.Property(x => x.Purpose).HasMaxLength(16);
            t.Property(x => x.Hash).HasMaxLength(64);
            t.Property(x => x.SecurityStamp).HasMaxLength(256);
            t.HasIndex(x => x.Hash).IsUnique();
            t.HasIndex(x => x.ExpiresAt);
            // A deleted account takes its tokens with it.
            t.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}

/// <summary>SQLite (the default): migrations in Storage/Migrations/Sqlite.</summary>
public sealed class SqlitePortcullisDb(DbContextOptions<SqlitePortcullisDb> options) : PortcullisDb(options)
{
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        base.ConfigureConventions(configurationBuilder);
        // SQLite cannot compare or order DateTimeOffset columns; stored as UTC ticks they sort and compare exactly.
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<DateTimeOffsetToBinaryConverter>();
    }
}

/// <summary>PostgreSQL 15+: migrations in Storage/Migrations/Postgres. DateTimeOffset maps to timestamptz (UTC).</summary>
public sealed class PostgresPortcullisDb(DbContextOptions<PostgresPortcullisDb> options) : PortcullisDb(options);
