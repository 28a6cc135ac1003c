using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Portcullis.Tokens;

namespace Portcullis.Access;

/// <summary>Built-in roles. There is never a default account holding them.</summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string User = "user";
    public static readonly string[] All = [Admin, User];
}

/// <summary>Authorization policy names. Endpoints refer to these; the fallback denies everything else.</summary>
public static class Policies
{
    /// <summary>A signed-in user (a token issued to a person, not to a client).</summary>
    public const string User = "user";

    public static IServiceCollection AddPortcullisAuthorization(this IServiceCollection services)
    {
        services.AddAuthorizationBuilder()
            // Deny by default: an endpoint that states nothing requires an authenticated caller.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(JwtBearerDefaults.AuthenticationScheme).RequireAuthenticatedUser().Build())
            .AddPolicy(User, policy => policy
                .AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
                .RequireAuthenticatedUser()
                .RequireAssertion(context => context.User.UserId() is not null));
        return services;
    }
}
