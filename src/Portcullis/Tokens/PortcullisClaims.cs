namespace Portcullis.Tokens;

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

/// <summary>Scopes with a fixed meaning; client scopes created by the CLI are added to the store.</summary>
public static class PortcullisScopes
{
    public const string OpenId = "openid";
    public const string OfflineAccess = "offline_access";
    public const string Profile = "profile";
    public const string Email = "email";
}
