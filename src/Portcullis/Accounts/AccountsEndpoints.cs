using Portcullis.Access;
using Portcullis.RateLimits;

namespace Portcullis.Accounts;

public static class AccountsEndpoints
{
    // No .Accepts(...) here: its content-type matcher answers a wrong type with a bare endpoint that has no
    // AllowAnonymous, so the fallback policy turned register's 415 into a 401. JsonBody is the one content-type
    // gate and answers 415 problem+json.
    public static IEndpointRouteBuilder MapAccounts(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/accounts", Register.HandleAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        app.MapPost("/api/accounts/password", ChangeRequiredPassword.HandleAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        // Answers the same for a known and an unknown address; the per-IP credential limit bounds the mail it sends.
        app.MapPost("/api/accounts/password-reset", PasswordReset.RequestAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        app.MapPost("/api/accounts/password-reset/confirm", PasswordReset.ConfirmAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        app.MapPost("/api/accounts/verify-email", EmailVerification.HandleAsync)
            .AllowAnonymous()
            .RequireRateLimiting(RateLimitPolicies.Credentials)
            .WithTags("Accounts");

        var me = app.MapGroup("/api/me")
            .RequireAuthorization(Policies.User)
            .RequireRateLimiting(RateLimitPolicies.Authenticated)
            .WithTags("Me");
        me.MapGet("/", GetMe.HandleAsync);
        me.MapPatch("/", UpdateProfile.HandleAsync);
        me.MapGet("/sessions", MySessions.ListAsync);
        me.MapDelete("/sessions/{id}", MySessions.EndAsync);
        me.MapPost("/password", ChangePassword.HandleAsync)
            .RequireRateLimiting(RateLimitPolicies.Credentials);
        me.MapPost("/logout", Logout.HandleAsync);
        me.MapPost("/logout-everywhere", Logout.EverywhereAsync);
        return app;
    }
}
