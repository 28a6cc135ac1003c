using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Portcullis.Storage;

namespace Portcullis.SignIn;

/// <summary>
/// A sign-in between its password and its second factor: no session exists yet. The right password leaves only this
/// short-lived cookie (<c>__Host-portcullis-2fa</c>, Data Protection-encrypted and signed, HttpOnly, SameSite=Strict):
/// who, when it ends, the account's security stamp then (so a change to the account voids it) and where to go after.
/// The code page (<c>/signin/code</c>) reads it; it ends with the sign-in or after <see cref="Lifetime"/>.
/// </summary>
public sealed class PendingSignIn(IDataProtectionProvider dataProtection, TimeProvider time)
{
    public const string CookieName = "__Host-portcullis-2fa";

    /// <summary>How long a person has to type the code after the password. Five minutes.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);

    private readonly IDataProtector _protector = dataProtection.CreateProtector("Portcullis.SignIn.PendingSignIn.v1");

    public sealed record State(Guid UserId, string? Stamp, long Expires, string? ReturnUrl);

    public void Begin(HttpContext http, User user, string? returnUrl)
    {
        var expires = time.GetUtcNow() + Lifetime;
        var state = new State(user.Id, user.SecurityStamp, expires.ToUnixTimeSeconds(), returnUrl);
        http.Response.Cookies.Append(CookieName, _protector.Protect(JsonSerializer.Serialize(state)), new CookieOptions
        {
            Secure = true,
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Path = "/",
            MaxAge = Lifetime,
            IsEssential = true,
        });
    }

    /// <summary>The pending sign-in of this browser, or null: none, forged, or expired.</summary>
    public State? Read(HttpContext http)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value) || string.IsNullOrEmpty(value) || value.Length > 4096)
        {
            return null;
        }

        try
        {
            var state = JsonSerializer.Deserialize<State>(_protector.Unprotect(value));
            return state is not null && DateTimeOffset.FromUnixTimeSeconds(state.Expires) > time.GetUtcNow() ? state : null;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null; // forged, or from a key that is gone: as if there were none
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static void End(HttpContext http) =>
        http.Response.Cookies.Delete(CookieName, new CookieOptions { Secure = true, HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });
}
