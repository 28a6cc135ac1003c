using System.Collections.Immutable;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Portcullis.Tokens;

/// <summary>
/// Every handler Portcullis adds to OpenIddict's server pipeline, one file each, registered from this one list (like
/// OpenIddict's own <c>DefaultHandlers</c>). OpenIddict runs the handlers of an event by their order, not by their
/// place here; each descriptor says where it runs relative to OpenIddict's handlers and why.
/// </summary>
public static class TokenHandlers
{
    public static ImmutableArray<OpenIddictServerHandlerDescriptor> All { get; } =
    [
        // A grant carries only its own parameters: a password grant with a refresh token or code is refused (S07).
        RefuseForeignGrantParameters.Descriptor,

        // Revocation (RFC 7009): revoking a refresh token ends its whole session.
        RevokeSessionWithToken.Descriptor,

        // Authorization requests: PKCE or, for a confidential client that opted out, a nonce (RFC 9700 §2.1.1).
        RequireNonceWithoutPkce.Descriptor,

        // Refresh and code exchange: a redeemed refresh token or code presented again ends its session. A refresh token
        // is claimed exactly once here (S06); a code, by OpenIddict's own redemption, which refuses a second one.
        EndSessionOnTokenReuse.Descriptor,
        RedeemRefreshTokenOnce.Descriptor,

        // A token response's writes are one commit; a refused or failed grant gives the write turn back.
        SignInTransaction.Begin,
        SignInTransaction.Commit,
        SignInTransaction.RollbackOnError,
        SignInTransaction.CommitClaimOnChallenge,

        // A form_post answer may run its one script (by hash) and post to the client only.
        FormPostResponsePolicy.Descriptor,

        // Discovery names the acr values the tokens carry.
        AdvertiseAcrValues.Descriptor,

        // Error responses name no OpenIddict documentation page.
        HideErrorUri<ApplyTokenResponseContext>.Descriptor,
        HideErrorUri<ApplyRevocationResponseContext>.Descriptor,
        HideErrorUri<ApplyIntrospectionResponseContext>.Descriptor,
        HideErrorUri<ApplyAuthorizationResponseContext>.Descriptor,
        HideErrorUri<ApplyUserInfoResponseContext>.Descriptor,
        HideErrorUri<ApplyEndSessionResponseContext>.Descriptor,
    ];
}
