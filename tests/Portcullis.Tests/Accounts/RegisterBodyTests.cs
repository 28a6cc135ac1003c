using System.Net;
using System.Text;
using Portcullis.Tests.Infrastructure;
using static Portcullis.Tests.Accounts.AccountsTestKit;

namespace Portcullis.Tests.Accounts;

/// <summary>
/// The registration body is read strictly (VAL-01..05, NET-03..05, NET-15): every malformed or unexpected body is a
/// 400/413/415 problem that names the field, never the value or the parser, and creates nothing.
/// Bodies are templates: <c>USERNAME</c> becomes a fresh name, <c>PASSWORD</c> a valid password.
/// </summary>
public sealed class RegisterBodyTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _http = fixture.Client;
    private PortcullisServer Server => fixture.Server;

    [Theory]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD","foo":"zebra-value-913"}""", "foo")]
    [InlineData("""{"username":"USERNAME","foo":1}""", "foo")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD","Foo":{"zebra-value-913":1}}""", "Foo")]
    [InlineData("""{"username":null,"email":"USERNAME@example.com","password":"PASSWORD"}""", "username")]
    [InlineData("""{"username":918273645,"email":"USERNAME@example.com","password":"PASSWORD"}""", "username")]
    [InlineData("""{"username":"USERNAME","email":["USERNAME@example.com"],"password":"PASSWORD"}""", "email")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":true}""", "password")]
    public async Task V01_an_unknown_null_or_mistyped_member_is_400_naming_the_field_and_creates_nothing(string template, string field)
    {
        var username = ClientFlows.UniqueName("vee");
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", Fill(template, username));

        await AssertInvalidFieldAsync(response, field, "zebra-value-913", "918273645", ClientFlows.Password, username);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V01_an_empty_object_is_400_naming_each_missing_field()
    {
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", "{}");

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        AssertNamesField(problem, "username");
        AssertNamesField(problem, "email");
        AssertNamesField(problem, "password");
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V01_a_10001_character_username_is_400_naming_the_field_without_echoing_it()
    {
        var username = "a" + new string('b', 10_000);
        var before = await Server.CountUsersAsync();

        using var response = await _http.RegisterAsync(username);

        await AssertInvalidFieldAsync(response, "username", new string('b', 64));
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V02_a_1_MiB_body_is_413_and_the_server_keeps_answering()
    {
        var before = await Server.CountUsersAsync();
        var body = $$"""{"username":"{{new string('a', 1024 * 1024)}}","email":"x@example.com","password":"{{ClientFlows.Password}}"}""";

        using var response = await _http.PostOversizedAsync("api/accounts", body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(before, await Server.CountUsersAsync());
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task V02_an_array_nested_30000_deep_within_the_body_limit_is_400_within_a_second()
    {
        // 100,000 levels need 200 KB, over the 64 KiB limit (next test: 413). The deepest body that fits shows
        // the parser refusing it without recursion trouble.
        var body = new string('[', 30_000) + new string(']', 30_000);
        var before = await Server.CountUsersAsync();

        using (var response = await _http.PostRawAsync("api/accounts", body))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        }

        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.PostRawAsync("api/accounts", body));
        Assert.Equal(before, await Server.CountUsersAsync());
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task V02_an_array_nested_100000_deep_with_a_content_length_is_refused_within_a_second()
    {
        var body = new string('[', 100_000) + new string(']', 100_000);

        using (var response = await _http.PostOversizedAsync("api/accounts", body))
        {
            // Over the 64 KiB limit, so the size check answers before the parser sees it.
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        }

        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.PostOversizedAsync("api/accounts", body));
        await AssertStillAnswersAsync();
    }

    [Fact]
    public async Task V02_an_object_nested_40_deep_is_400_within_a_second()
    {
        var body = string.Concat(Enumerable.Repeat("""{"a":""", 40)) + "1" + new string('}', 40);
        var before = await Server.CountUsersAsync();

        using (var response = await _http.PostRawAsync("api/accounts", body))
        {
            await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        }

        await AssertAnsweredWithinAsync(TimeSpan.FromSeconds(1), () => _http.PostRawAsync("api/accounts", body));
        Assert.Equal(before, await Server.CountUsersAsync());
        await AssertStillAnswersAsync();
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(null)]
    [InlineData("application/json; charset=utf-16")]
    public async Task V04_register_with_a_content_type_other_than_json_utf8_is_415(string? contentType)
    {
        var username = ClientFlows.UniqueName("ctype");
        var json = Fill("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD"}""", username);
        var body = contentType switch
        {
            "application/x-www-form-urlencoded" => Encoding.UTF8.GetBytes(
                $"username={username}&email={username}%40example.com&password={Uri.EscapeDataString(ClientFlows.Password)}"),
            "application/json; charset=utf-16" => Encoding.Unicode.GetBytes(json),
            _ => Encoding.UTF8.GetBytes(json),
        };
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", body, contentType);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.UnsupportedMediaType, secrets: [ClientFlows.Password]);
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Theory]
    [InlineData("""{"username":"USERNAME",""")]
    [InlineData("""{"username":'USERNAME'}""")]
    [InlineData("""{"username":'USERNAME',"email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD"}}""")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD"} {}""")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD""")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("null")]
    [InlineData("\"USERNAME\"")]
    public async Task V07_malformed_json_is_400_without_parser_internals(string template)
    {
        var username = ClientFlows.UniqueName("mal");
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", Fill(template, username));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password, username]);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Theory]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD" /*c*/}""")]
    [InlineData("""{"username":"USERNAME", // c""" + "\n" + """ "email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD",}""")]
    [InlineData("""{"username":NaN,"email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":Infinity,"email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":-Infinity,"email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":1e999,"email":"USERNAME@example.com","password":"PASSWORD"}""")]
    [InlineData("""{"username":"USERNAME","email":12,"password":"PASSWORD"}""")]
    [InlineData("""{"username":"USERNAME","email":"USERNAME@example.com","password":123456789012345678}""")]
    [InlineData("""{"username":"USERNAME","username":"USERNAMEx","email":"USERNAME@example.com","password":"PASSWORD"}""")]
    public async Task V09_comments_trailing_commas_special_numbers_wrong_types_and_duplicates_are_400(string template)
    {
        var username = ClientFlows.UniqueName("nine");
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", Fill(template, username));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password]);
        Assert.Equal(before, await Server.CountUsersAsync());
        Assert.Null(await Server.FindUserAsync(username));
    }

    [Fact]
    public async Task V10_invalid_utf8_in_the_username_is_400_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("utf");
        var body = Encoding.UTF8.GetBytes(Fill("""{"username":"alXXceUSERNAME","email":"USERNAME@example.com","password":"PASSWORD"}""", username));
        var marker = Encoding.ASCII.GetBytes("XX");
        var at = body.AsSpan().IndexOf(marker);
        body[at] = 0xC3; // 0xC3 0x28: a lead byte followed by a byte that cannot continue it
        body[at + 1] = 0x28;
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password]);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Theory]
    [InlineData("""a\ud800b""")]
    [InlineData("""a\udc00b""")]
    [InlineData("""a\ud800\ud800b""")]
    [InlineData("""a\u0000b""")]
    [InlineData("""a\u0007b""")]
    public async Task V10_lone_surrogates_and_nul_in_the_username_are_400_and_create_nothing(string escaped)
    {
        var username = ClientFlows.UniqueName("sur");
        var body = Fill($$"""{"username":"{{escaped}}USERNAME","email":"USERNAME@example.com","password":"PASSWORD"}""", username);
        var before = await Server.CountUsersAsync();

        using var response = await _http.PostRawAsync("api/accounts", body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password]);
        Assert.Equal(before, await Server.CountUsersAsync());
    }

    [Fact]
    public async Task V10_a_lone_surrogate_in_the_password_is_400_and_creates_nothing()
    {
        var username = ClientFlows.UniqueName("sur");
        var body = Fill("""{"username":"USERNAME","email":"USERNAME@example.com","password":"PASSWORD\ud800"}""", username);

        using var response = await _http.PostRawAsync("api/accounts", body);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, secrets: [ClientFlows.Password]);
        Assert.Null(await Server.FindUserAsync(username));
    }

    private async Task AssertStillAnswersAsync()
    {
        using var fresh = Server.CreateClient();
        using var live = await fresh.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }
}
