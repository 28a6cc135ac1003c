namespace Portcullis.Tokens;

/// <summary>Scopes with a fixed meaning; client scopes created by the CLI are added to the store.</summary>
public static class PortcullisScopes
{
    public const string OpenId = "openid";
    public const string OfflineAccess = "offline_access";
    public const string Profile = "profile";
    public const string Email = "email";
}
