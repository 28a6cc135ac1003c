using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using Portcullis.Access;
using Portcullis.Accounts;
using Portcullis.Audit;
using Portcullis.Storage;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Portcullis.SignIn;

/// <summary>
/// A person's sign-in on the hosted pages. The cookie (<c>__Host-portcullis</c>) holds the user and the session id;
/// the session itself is a server-side record — an OpenIddict authorization, like a token session — so everything
/// that ends token sessions ends it too: sign-out, "log out everywhere", a password change, disabling the user.
/// Every code and token issued through the browser belongs to that same session (<c>sid</c>), so ending it ends them.
/// Each request checks the cookie against the in-memory revocation state (<see cref="RevocationState"/>): no
/// database query per request.
/// </summary>
public sealed class BrowserSession(
    SignInManager<User> signIn, IOpenIddictAuthorizationManager authorizations, SessionTerminator sessions,
    PortcullisDb db, AuditLog audit, TimeProvider time)
{
    /// <summary>The cookie scheme: Identity's application scheme, configured in <see cref="SignInServices"/>.</summary>
    public static readonly string Scheme = IdentityConstants.ApplicationScheme;

    public const string CookieName = "__Host-portcullis";

    /// <summary>Marks an authorization as a browser session (a token session has an application instead).</summary>
    public const string BrowserProperty = "portcullis:browser";

    /// <summary>The signed-in person, or null. A cookie whose session has ended was already refused by the handler.</summary>
    public static async Task<Current?> GetAsync(HttpContext http)
    {
        var result = await http.AuthenticateAsync(Scheme);
        return result.Succeeded && Current.From(result.Principal) is { } current ? current : null;
    }

    /// <summary>What the cookie says; all of it was checked when the cookie was read.</summary>
    public sealed record Current(Guid UserId, string Username, string SessionId, int Epoch, long SessionStart, long AuthTime, string Amr)
    {
        public static Current? From(ClaimsPrincipal? principal) =>
            principal is not null
            && Guid.TryParse(principal.FindFirstValue(ClaimTypes.NameIdentifier), out var userId)
            && principal.FindFirstValue(PortcullisClaims.SessionId) is { } sid
            && int.TryParse(principal.FindFirstValue(PortcullisClaims.SecurityEpoch), out var epoch)
            && long.TryParse(principal.FindFirstValue(PortcullisClaims.SessionStart), out var start)
            && long.TryParse(principal.FindFirstValue(Claims.AuthenticationTime), out var authTime)
                ? new Current(userId, principal.FindFirstValue(ClaimTypes.Name) ?? "", sid, epoch, start, authTime,
                    principal.FindFirstValue(Claims.AuthenticationMethodReference) ?? "pwd")
                : null;
    }

    /// <summary>
    /// Starts a new session after a password check: a new id every time (no fixation), and the old session of this
    /// browser, if any, ends.
    /// </summary>
    public async Task<string> StartAsync(User user, Current? previous, CancellationToken ct) =>
        await StartAsync(user, previous, [AuthenticationMethods.Password], ct);

    /// <summary>As above, after the methods in <paramref name="methods"/> (RFC 8176 <c>amr</c> values) were checked.</summary>
    public async Task<string> StartAsync(User user, Current? previous, IReadOnlyList<string> methods, CancellationToken ct)
    {
        if (previous is not null)
        {
            await sessions.EndSessionAsync(previous.SessionId, accessTokenId: null, ct);
        }

        var now = time.GetUtcNow();
        var descriptor = new OpenIddictAuthorizationDescriptor
        {
            Subject = user.Id.ToString(),
            Type = AuthorizationTypes.AdHoc,
            Status = Statuses.Valid,
            CreationDate = now,
        };
        descriptor.Properties[BrowserProperty] = JsonSerializer.SerializeToElement(true);
        var authorization = await authorizations.CreateAsync(descriptor, ct);
        var sessionId = (await authorizations.GetIdAsync(authorization, ct))!;

        audit.Record(AuditEvents.BrowserSignedIn, AuditOutcomes.Success, $"session:{sessionId}", new { amr = methods }, actor: $"user:{user.Id}");
        await db.SaveChangesAsync(ct);

        var seconds = now.ToUnixTimeSeconds();
        await signIn.SignInWithClaimsAsync(user, new AuthenticationProperties { IsPersistent = false, IssuedUtc = now },
        [
            new Claim(PortcullisClaims.SessionId, sessionId),
            new Claim(PortcullisClaims.SecurityEpoch, user.SecurityEpoch.ToString(System.Globalization.CultureInfo.InvariantCulture), ClaimValueTypes.Integer32),
            new Claim(PortcullisClaims.SessionStart, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
            new Claim(Claims.AuthenticationTime, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), ClaimValueTypes.Integer64),
            // Space-separated in the cookie; the tokens carry them as a JSON array (Authorize.cshtml.cs).
            new Claim(Claims.AuthenticationMethodReference, string.Join(' ', methods)),
        ]);
        return sessionId;
    }

    /// <summary>Ends the browser session and every token issued under it, and removes the cookie.</summary>
    public async Task EndAsync(HttpContext http, Current current, CancellationToken ct)
    {
        audit.Record(AuditEvents.BrowserSignedOut, AuditOutcomes.Success, $"session:{current.SessionId}", actor: $"user:{current.UserId}");
        await sessions.EndSessionAsync(current.SessionId, accessTokenId: null, ct);
        await http.SignOutAsync(Scheme);
    }

    /// <summary>RFC 8176 values Portcullis uses in <c>amr</c>.</summary>
    public static class AuthenticationMethods
    {
        public const string Password = "pwd";

        /// <summary>A code from an authenticator app (TOTP).</summary>
        public const string OneTimePassword = "otp";

        /// <summary>More than one factor was checked.</summary>
        public const string MultiFactor = "mfa";

        /// <summary>A recovery code (a look-up secret: NIST SP 800-63B). RFC 8176 registers no value for it.</summary>
        public const string RecoveryCode = "rc";
    }


    /// <summary>
    /// The cookie handler's check of every cookie it reads, from memory: the session not ended, the user still
    /// active with the same security epoch (a password change, "log out everywhere" or disabling moves it on), and
    /// the absolute lifetime not passed. A failing cookie is removed.
    /// </summary>
    internal sealed class Validator(RevocationState revocations, IOptions<SignInOptions> options, TimeProvider time) : CookieAuthenticationEvents
    {
        public override async Task ValidatePrincipal(CookieValidatePrincipalContext context)
        {
            var current = Current.From(context.Principal);
            var valid = current is not null
                && !revocations.IsSessionRevoked(current.SessionId)
                && DateTimeOffset.FromUnixTimeSeconds(current.SessionStart) + options.Value.AbsoluteLifetime > time.GetUtcNow();
            if (valid)
            {
                var state = await revocations.GetUserAsync(current!.UserId, context.HttpContext.RequestAborted);
                valid = state.Active && state.Epoch == current.Epoch;
            }

            if (!valid)
            {
                context.RejectPrincipal();
                await context.HttpContext.SignOutAsync(Scheme);
            }
        }

        // The pages never challenge this scheme; they redirect to the sign-in page themselves. An API route that
        // somehow did would get a plain status, not a redirect.
        public override Task RedirectToLogin(RedirectContext<CookieAuthenticationOptions> context)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return Task.CompletedTask;
        }

        public override Task RedirectToAccessDenied(RedirectContext<CookieAuthenticationOptions> context)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return Task.CompletedTask;
        }
    }
}
