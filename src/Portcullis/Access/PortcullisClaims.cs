using System.Security.Claims;
using OpenIddict.Abstractions;

namespace Portcullis.Access;

/// <summary>Private claims Portcullis puts in its tokens. None carries personal data (RFC 8725 §3.12; ASVS V14.1.1).</summary>
public static class PortcullisClaims
{
    /// <summary>The user's security epoch when the token was issued; an older epoch is dead.</summary>
    public const string SecurityEpoch = "sep";

    /// <summary>The session (OpenIddict authorization) the token belongs to.</summary>
    public const string SessionId = "sid";

    /// <summary>Unix time of the login that started the session; bounds its absolute lifetime.</summary>
    public const string SessionStart = "sst";
}

/// <summary>Who the caller is, read from the claims of a verified token or session.</summary>
public static class CallerClaims
{
    /// <summary>The caller's user id, for endpoints that require a user (not a client) token.</summary>
    public static Guid? UserId(this ClaimsPrincipal principal) =>
        principal.HasClaim(c => c.Type == PortcullisClaims.SecurityEpoch)
        && Guid.TryParse(principal.FindFirstValue(OpenIddictConstants.Claims.Subject), out var id) ? id : null;
}
