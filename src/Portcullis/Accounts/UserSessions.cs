using OpenIddict.Abstractions;
using Portcullis.Audit;

namespace Portcullis.Accounts;

/// <summary>
/// A user's own sessions (OpenIddict authorizations): the list, and ending one of them, audited as the user's act
/// (<c>session_end</c>). The admin API ends sessions through <c>UserAdministration</c>, audited as an operator's.
/// </summary>
public sealed class UserSessions(IOpenIddictAuthorizationManager authorizations, SessionTerminator sessions, AuditLog audit)
{
    public sealed record Session(string Id, string? Client, DateTimeOffset? Created);

    /// <summary>The user's live sessions, newest first.</summary>
    public async Task<IReadOnlyList<Session>> ListAsync(Guid userId, CancellationToken ct)
    {
        var result = new List<Session>();
        await foreach (var authorization in authorizations.FindBySubjectAsync(userId.ToString(), ct))
        {
            if (await authorizations.HasStatusAsync(authorization, OpenIddictConstants.Statuses.Valid, ct))
            {
                result.Add(new Session(
                    (await authorizations.GetIdAsync(authorization, ct))!,
                    await authorizations.GetApplicationIdAsync(authorization, ct),
                    await authorizations.GetCreationDateAsync(authorization, ct)));
            }
        }

        return [.. result.OrderByDescending(s => s.Created)];
    }

    /// <summary>Ends one of the user's sessions; false (nothing done) when the id is not a session of theirs.</summary>
    public async Task<bool> EndAsync(Guid userId, string sessionId, CancellationToken ct)
    {
        if (await authorizations.FindByIdAsync(sessionId, ct) is not { } authorization
            || await authorizations.GetSubjectAsync(authorization, ct) != userId.ToString())
        {
            return false;
        }

        // Staged here, saved by the ending's own transaction: the event and the revocation commit together.
        audit.Record(AuditEvents.SessionEnded, AuditOutcomes.Success, $"session:{sessionId}", actor: $"user:{userId}");
        await sessions.EndSessionAsync(sessionId, accessTokenId: null, ct);
        return true;
    }
}
