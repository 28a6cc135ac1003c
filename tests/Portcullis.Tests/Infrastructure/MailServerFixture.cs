namespace Portcullis.Tests.Infrastructure;

/// <summary>A <see cref="ServerFixture"/> whose outgoing mail goes to a real SMTP server on loopback (<see cref="Smtp"/>).</summary>
public sealed class MailServerFixture : ServerFixture
{
    public SmtpSink Smtp { get; } = SmtpSink.Started();

    protected override Task<Dictionary<string, string?>?> SettingsAsync() => Task.FromResult<Dictionary<string, string?>?>(Smtp.Settings);

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Smtp.DisposeAsync();
    }
}
