// Bare Kestrel minimal API: GET /api/me answers the same JSON shape as Portcullis's /api/me without any
// authentication, database or middleware, over HTTPS with Portcullis's TLS settings (TLS 1.2/1.3, the same
// ECDHE + AEAD cipher-suite policy, the same certificate). Usage:
//   dotnet Baseline.dll --urls https://127.0.0.1:PORT --cert cert.pem --key key.pem
// With --proxy-to http://127.0.0.1:UPSTREAM it is instead a bare YARP forwarder (MapForwarder: YARP's default
// HttpClient and transforms, the same ones a gateway route gets; no authentication, rate limit or validation):
// every path but /health/live goes to the upstream. The ceiling for any YARP-based gateway on this machine.
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var certificate = X509Certificate2.CreateFromPemFile(builder.Configuration["cert"]!, builder.Configuration["key"]!);
CipherSuitesPolicy suites = new([
    TlsCipherSuite.TLS_AES_256_GCM_SHA384,
    TlsCipherSuite.TLS_AES_128_GCM_SHA256,
    TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
]);
builder.WebHost.UseKestrelHttpsConfiguration();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.ConfigureHttpsDefaults(https =>
    {
        https.ServerCertificate = certificate;
        https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
        https.OnAuthenticate = (_, ssl) => ssl.CipherSuitesPolicy = suites;
    });
});

var proxyTo = builder.Configuration["proxy-to"];
if (proxyTo is not null)
{
    builder.Services.AddHttpForwarder();
}

var app = builder.Build();
if (proxyTo is not null)
{
    app.MapGet("/health/live", () => TypedResults.Ok(new Health("ok")));
    app.MapForwarder("/{**catch-all}", proxyTo, _ => { }); // the transform-builder overload: YARP's default transforms
    app.Run();
    return;
}

var me = new Me(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), "bench", "bench@localhost.invalid",
    new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), ["user"]);
app.MapGet("/api/me", () => TypedResults.Ok(me));
app.MapGet("/health/live", () => TypedResults.Ok(new Health("ok")));
// The gateway scenario's trivial upstream (served on plain HTTP by a second instance): read the body, answer.
app.MapPost("/register", async (HttpContext context) =>
{
    await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
    return TypedResults.Ok(new Health("ok"));
});
app.Run();

internal sealed record Me(Guid Id, string Username, string Email, DateTimeOffset Created, IReadOnlyList<string> Roles);

internal sealed record Health(string Status);
