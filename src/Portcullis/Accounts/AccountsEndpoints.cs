using Portcullis.Access;
using Portcullis.RateLimits;

namespace Portcullis.Accounts;

public static class AccountsEndpoints
{
    public static IEndpointRouteBuilder MapAccounts(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/accounts", Register.HandleAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            // No .Accepts<>() here: its routing-level 415 endpoint carries no AllowAnonymous, so the fallback
            // policy would answer an anonymous wrong content type with 401. JsonBody answers 415 itself.
            .WithTags("Accounts");

        app.MapPost("/api/accounts/password", ChangeRequiredPassword.HandleAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        var me = app.MapGroup("/api/me")
            .RequireAuthorization(Policies.User)
            .RequireRateLimiting(RateLimitPolicies.Authenticated)
            .WithTags("Me");
        me.MapGet("/", GetMe.HandleAsync);
        me.MapPatch("/", UpdateProfile.HandleAsync).Accepts<UpdateProfile.Request>("application/json");
        me.MapGet("/sessions", MySessions.ListAsync);
        me.MapDelete("/sessions/{id}", MySessions.EndAsync);
        me.MapPost("/password", ChangePassword.HandleAsync)
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .Accepts<ChangePassword.Request>("application/json");
        me.MapPost("/logout", Logout.HandleAsync);
        me.MapPost("/logout-everywhere", Logout.EverywhereAsync);
        return app;
    }
}
