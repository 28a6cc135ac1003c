namespace Portcullis.SignIn;

/// <summary>The browser session of the hosted pages. Section <c>SignIn</c>.</summary>
public sealed class SignInOptions
{
    public const string Section = "SignIn";

    /// <summary>A browser session unused this long ends. Default 30 minutes (Keycloak's SSO idle default).</summary>
    public TimeSpan IdleLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>A browser session ends this long after sign-in, used or not. Default 10 hours.</summary>
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromHours(10);
}
