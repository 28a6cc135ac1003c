using Portcullis.Hosting;

namespace Portcullis.Gateway;

public static partial class GatewayRouteCompiler
{
    /// <summary>
    /// Reads the routes file with the configuration binder (the same rules as appsettings). Unknown fields and values
    /// of the wrong type are reported first, each by route name and field with the closest known field, e.g.
    /// <c>gateway routes file /x/routes.json: route "orders": unknown field "Requires" (did you mean "Require"?)</c>;
    /// then no routes are returned.
    /// </summary>
    public static GatewayRoutesFile? ReadRoutesFile(string path, List<string> errors)
    {
        var bytes = File.ReadAllBytes(path);
        using var stream = new MemoryStream(bytes);
        var configuration = new ConfigurationBuilder().AddJsonStream(stream).Build();
        var problems = ConfigurationCheck.CheckShape(typeof(GatewayRoutesFile), configuration);
        foreach (var problem in problems)
        {
            errors.Add($"{FileLabel(path)}: {Where(configuration, problem.Path)}{problem.Message}");
        }

        return problems.Count > 0
            ? null
            : configuration.Get<GatewayRoutesFile>(binder => binder.ErrorOnUnknownConfiguration = true) ?? new GatewayRoutesFile();
    }

    private static string FileLabel(string path) => $"gateway routes file {path}";

    /// <summary>How a route from the file is named in errors: by its Name, or by its place when it has none.</summary>
    private static string RouteLabel(string? name, int index) =>
        string.IsNullOrWhiteSpace(name) ? $"route {index + 1} (no Name)" : $"route \"{name}\"";

    /// <summary><c>Routes:0:Body</c> → <c>route "orders": in "Body": </c>.</summary>
    private static string Where(IConfiguration file, string path)
    {
        var segments = path.Length == 0 ? [] : path.Split(':');
        if (segments.Length < 2 || !segments[0].Equals(nameof(GatewayRoutesFile.Routes), StringComparison.OrdinalIgnoreCase)
            || !int.TryParse(segments[1], System.Globalization.CultureInfo.InvariantCulture, out var index))
        {
            return path.Length == 0 ? "" : $"in \"{path}\": ";
        }

        var route = RouteLabel(file[$"{segments[0]}:{segments[1]}:{nameof(GatewayRouteOptions.Name)}"], index) + ": ";
        return segments.Length == 2 ? route : $"{route}in \"{string.Join(':', segments[2..])}\": ";
    }
}
