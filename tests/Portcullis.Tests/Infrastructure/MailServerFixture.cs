namespace Portcullis.Tests.Infrastructure;

/// <summary>A <see cref="ServerFixture"/> whose outgoing mail goes to a real SMTP server on loopback (<see cref="Smtp"/>).</summary>
public class MailServerFixture : ServerFixture
{
    public SmtpSink Smtp { get; } = SmtpSink.Started();

    protected override Task<Dictionary<string, string?>?> SettingsAsync()
    {
        var settings = Smtp.Settings;
        foreach (var (key, value) in MoreSettings)
        {
            settings[key] = value;
        }

        return Task.FromResult<Dictionary<string, string?>?>(settings);
    }

    /// <summary>Settings besides the mail ones.</summary>
    protected virtual Dictionary<string, string?> MoreSettings => [];

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Smtp.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
