using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Portcullis.Access;
using Portcullis.Hosting;
using Portcullis.Storage;

namespace Portcullis.Accounts;

/// <summary>
/// The accounts feature's services: Identity without its password rules and lockout, Argon2id, the hashing limit.
/// <para>
/// Owns a person's own account (routes in <see cref="AccountsEndpoints"/>): registration, profile, password change
/// (also the change required at first login), the caller's sessions and logout; the password and username rules,
/// Argon2id hashing and how many hashes run at once; the password check the token endpoint asks
/// (<see cref="Credentials"/>); ending sessions (<see cref="SessionTerminator"/>, <see cref="UserSessions"/>); password
/// reset by e-mailed link (<see cref="PasswordResets"/>) and its tokens.
/// </para>
/// <para>
/// Uses Storage (the DbContext and the User entity), Email (the outbox and link URLs), Audit (events), Access (policy and role names, claim names;
/// <c>RevocationState</c>, so a change kills live access tokens), RateLimits (policy names, the login throttle) and
/// Hosting (JSON bodies, problem types, metrics). Never Tokens: the token endpoint asks Accounts, not the reverse.
/// </para>
/// </summary>
public static class AccountsServices
{
    public static IServiceCollection AddPortcullisAccounts(this IServiceCollection services)
    {
        services.AddOptionsWithValidateOnStart<AccountOptions>().BindConfiguration(AccountOptions.Section).ValidateDataAnnotations();
        services.AddIdentityCore<User>(identity =>
            {
                // Password rules live in PasswordPolicy (NIST 800-63B-4): no composition rules here.
                identity.Password.RequireDigit = false;
                identity.Password.RequireLowercase = false;
                identity.Password.RequireUppercase = false;
                identity.Password.RequireNonAlphanumeric = false;
                identity.Password.RequiredLength = 0;
                identity.Password.RequiredUniqueChars = 0;
                identity.User.AllowedUserNameCharacters = string.Empty; // UsernameRules decides.
                identity.User.RequireUniqueEmail = true;
                // Plain lockout lets anyone lock any account; per-account and per-IP throttling replaces it.
                identity.Lockout.AllowedForNewUsers = false;
            })
            .AddRoles<Role>()
            .AddEntityFrameworkStores<PortcullisDb>()
            // AddIdentityCore registers no token provider: the authenticator app needs Identity's (TOTP, RFC 6238).
            .AddTokenProvider<AuthenticatorTokenProvider<User>>(TokenOptions.DefaultAuthenticatorProvider);
        // Identity's store with recovery codes stored hashed (it replaces the one AddEntityFrameworkStores registered).
        services.AddScoped<IUserStore<User>, HashedRecoveryCodeUserStore>();
        services.AddScoped<SecondFactor>();
        services.AddSingleton<SecondFactorThrottle>();
        services.AddSingleton<ILookupNormalizer, PortcullisLookupNormalizer>();
        services.AddOptionsWithValidateOnStart<PasswordHashingOptions>().BindConfiguration(PasswordHashingOptions.Section);
        services.AddSingleton<IValidateOptions<PasswordHashingOptions>, PasswordHashingOptionsValidator>();
        services.AddSingleton<PasswordHashingLimiter>();
        services.AddSingleton<Argon2PasswordHasher>();
        services.AddSingleton<IPasswordHasher<User>>(sp => sp.GetRequiredService<Argon2PasswordHasher>());
        services.AddSingleton<PasswordPolicy>();
        services.AddScoped<AccountCreator>();
        services.AddScoped<SessionTerminator>();
        services.AddScoped<Credentials>();
        services.AddScoped<UserSessions>();
        services.AddScoped<PasswordResets>();
        services.AddScoped<EmailVerification>();
        return services;
    }
}
