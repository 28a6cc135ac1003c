using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;

namespace Portcullis.Hosting;

/// <summary>
/// The settings Portcullis knows, found by reflection over its options classes (every class with a
/// <c>public const string Section</c>: the ones bound with <c>BindConfiguration</c>), and two checks against them:
/// values the binder cannot convert (start-up stops with one line per setting, before anything binds) and keys no
/// options class reads (a misspelt name is otherwise silently ignored; reported with the closest known key).
/// </summary>
public static class ConfigurationCheck
{
    /// <summary>Top-level keys the framework reads (not Portcullis options); anything below them is accepted.</summary>
    private static readonly string[] FrameworkKeys =
    [
        "urls", "http_ports", "https_ports", "AllowedHosts", "Logging", "Kestrel", "environment", "applicationName",
        "contentRoot", "webroot", "detailedErrors", "shutdownTimeoutSeconds", "preventHostingStartup",
        "hostingStartupAssemblies", "hostingStartupExcludeAssemblies", "suppressStatusMessages",
    ];

    /// <summary>Every configuration section bound to an options class, by its <c>Section</c> constant.</summary>
    public static IReadOnlyDictionary<string, Type> OptionsSections { get; } = typeof(ConfigurationCheck).Assembly.GetTypes()
        .Select(t => (Type: t, Field: t.GetField("Section", BindingFlags.Public | BindingFlags.Static)))
        .Where(x => x.Field is { IsLiteral: true } && x.Field.FieldType == typeof(string))
        .ToDictionary(x => (string)x.Field!.GetRawConstantValue()!, x => x.Type, StringComparer.OrdinalIgnoreCase);

    private static readonly Node Root = BuildRoot();

    /// <summary>Refuses values the configuration binder would fail on, naming each setting, the problem and a good value.</summary>
    /// <exception cref="ConfigurationException">One or more settings hold a value of the wrong type.</exception>
    public static void ThrowIfValuesInvalid(IConfiguration configuration)
    {
        var problems = new List<string>();
        foreach (var (key, value) in configuration.AsEnumerable().OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase))
        {
            if (string.IsNullOrEmpty(value))
            {
                continue; // the binder leaves an empty value's default in place
            }

            if (string.Equals(key, "urls", StringComparison.OrdinalIgnoreCase))
            {
                problems.AddRange(UrlProblems(value).Select(p => $"urls ({EnvironmentVariable("urls")}): {p}"));
                continue;
            }

            if (Resolve(Root, key) is { Type: { } type } node && node.IsScalar && ValueProblem(value, type, node.Default) is { } problem)
            {
                var shown = LooksSecret(key) ? "the value (hidden)" : $"'{value}'";
                problems.Add($"{key} ({EnvironmentVariable(key)}): {shown} {problem}");
            }
        }

        if (problems.Count > 0)
        {
            throw new ConfigurationException(problems);
        }
    }

    /// <summary>A key no options class reads, where it was set, and the closest known key if one is near.</summary>
    public sealed record UnknownSetting(string Key, string? EnvironmentVariable, string? Suggestion);

    /// <summary>
    /// Keys under Portcullis's sections that nothing reads, and <c>Portcullis__</c> environment variables that name
    /// no setting. Other top-level keys belong to the framework or the process environment, except one a letter or
    /// two away from a Portcullis section (<c>Acounts:AllowRegistration</c>).
    /// </summary>
    public static IReadOnlyList<UnknownSetting> FindUnknown(IConfiguration configuration)
    {
        var environment = System.Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith(PortcullisDefaults.EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            .ToDictionary(k => k[PortcullisDefaults.EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal), k => k, StringComparer.OrdinalIgnoreCase);
        var found = new Dictionary<string, UnknownSetting>(StringComparer.OrdinalIgnoreCase);
        // Values only: a section's own entry (Acounts) would hide the key as written (Acounts:AllowRegistration).
        foreach (var key in configuration.AsEnumerable().Where(p => p.Value is not null).Select(p => p.Key).Concat(environment.Keys))
        {
            var segments = key.Split(':');
            var first = Root.Children.GetValueOrDefault(segments[0]);
            var nearSection = first is null && segments.Length > 1 && OptionsSections.Keys.Any(s => IsNear(segments[0], s.Split(':')[0]));
            if (first is null && !environment.ContainsKey(key) && !nearSection)
            {
                continue; // not aimed at Portcullis: PATH, DOTNET_*, …
            }

            // One finding per unknown name, reported as the first key written under it.
            if (Unknown(Root, segments) is { } miss && !found.ContainsKey(miss.Key))
            {
                found[miss.Key] = new UnknownSetting(key, environment.TryGetValue(key, out var variable) ? variable : null, miss.Corrected);
            }
        }

        return [.. found.Values.OrderBy(u => u.Key, StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>Unknown keys as <c>doctor</c> findings (also logged as warnings at every start).</summary>
    public static IEnumerable<Doctor.Finding> Findings(IConfiguration configuration) =>
        FindUnknown(configuration).Select(u => new Doctor.Finding(
            Doctor.Severity.Medium,
            "unknown-setting",
            $"{u.Key}{(u.EnvironmentVariable is null ? "" : $" (environment variable {u.EnvironmentVariable})")} is not a Portcullis setting: it is ignored.",
            u.Suggestion is null
                ? "Check the name against docs/configuration.md, or remove it."
                : $"Did you mean {u.Suggestion}{(u.EnvironmentVariable is null ? "" : $" ({EnvironmentVariable(u.Suggestion)})")}?"));

    /// <summary>Why one <c>--urls</c> / <c>urls</c> value cannot be listened on, with the fix; empty when it can.</summary>
    public static IEnumerable<string> UrlProblems(string urls)
    {
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var scheme = url.IndexOf("://", StringComparison.Ordinal);
            if (scheme < 0)
            {
                yield return $"'{url}' has no scheme; use https://{url}";
            }
            else if (!url[..scheme].Equals("https", StringComparison.OrdinalIgnoreCase) && !url[..scheme].Equals("http", StringComparison.OrdinalIgnoreCase))
            {
                yield return $"'{url}' has the scheme '{url[..scheme]}'; use https://{url[(scheme + 3)..]}";
            }
        }
    }

    /// <summary>The environment variable that sets <paramref name="key"/>.</summary>
    public static string EnvironmentVariable(string key) => PortcullisDefaults.EnvironmentPrefix + key.Replace(":", "__", StringComparison.Ordinal);

    private static readonly string[] SecretWords = ["Password", "Secret", "Key", "Pem", "ConnectionString"];

    /// <summary>Settings whose name says they may hold a credential: their values are never printed.</summary>
    public static bool LooksSecret(string key) =>
        SecretWords.Any(word => key.Split(':')[^1].Contains(word, StringComparison.OrdinalIgnoreCase));

    /// <summary>Why the binder would refuse <paramref name="value"/> for <paramref name="type"/>, or null when it converts.</summary>
    private static string? ValueProblem(string value, Type type, object? defaultValue)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        // The binder's own conversion: the type's TypeConverter with the invariant culture (ConfigurationBinder.TryConvertValue).
        var converter = TypeDescriptor.GetConverter(type);
        if (type == typeof(string) || type == typeof(object) || !converter.CanConvertFrom(typeof(string)))
        {
            return null;
        }

        try
        {
            converter.ConvertFromInvariantString(value);
            return null;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException or NotSupportedException)
        {
            var example = defaultValue is null ? null : Convert.ToString(defaultValue is TimeSpan span ? span.ToString("c", CultureInfo.InvariantCulture) : defaultValue, CultureInfo.InvariantCulture);
            return type switch
            {
                _ when type == typeof(bool) => "is not true or false; use true or false.",
                _ when type == typeof(TimeSpan) => $"is not a time span; use [d.]hh:mm:ss[.fff], e.g. {example ?? "00:10:00"}.",
                _ when type.IsEnum => $"is not one of {string.Join(", ", Enum.GetNames(type))}.",
                _ when type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(uint) || type == typeof(ulong) || type == typeof(ushort) || type == typeof(byte)
                    => $"is not a whole number; use e.g. {example ?? "10"}.",
                _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => $"is not a number; use e.g. {example ?? "0.5"}.",
                _ when type == typeof(Uri) => "is not a URL; use an absolute URL such as https://auth.example.com/.",
                _ => $"is not a valid {type.Name}{(example is null ? "" : $"; use e.g. {example}")}.",
            };
        }
    }

    /// <summary>
    /// Where a key leaves the known settings: the known path before it, the unknown name, the nearest known name there,
    /// and the whole key corrected when the rest of it is known below that name.
    /// </summary>
    private sealed record Miss(string Path, string Name, string? Nearest, string? Corrected)
    {
        public string Key => Path.Length == 0 ? Name : $"{Path}:{Name}";
    }

    private static Miss? Unknown(Node root, string[] segments)
    {
        var node = root;
        for (var i = 0; i < segments.Length; i++)
        {
            if (node.Children.TryGetValue(segments[i], out var child))
            {
                node = child;
                continue;
            }

            if (node.Item is { } item)
            {
                node = item;
                continue;
            }

            if (node.OpenEnded)
            {
                return null;
            }

            var nearest = node.Children.Keys.Where(k => IsNear(segments[i], k)).OrderBy(k => Distance(segments[i], k)).FirstOrDefault();
            string? corrected = null;
            if (nearest is not null)
            {
                // Acounts:AllowRegistration → Accounts:AllowRegistration, when AllowRegistration is known below Accounts.
                var fixedSegments = segments.ToArray();
                fixedSegments[i] = nearest;
                corrected = Unknown(root, fixedSegments) is null ? string.Join(':', fixedSegments) : string.Join(':', fixedSegments[..(i + 1)]);
            }

            return new Miss(string.Join(':', segments[..i]), segments[i], nearest, corrected);
        }

        return null;
    }

    /// <summary>
    /// What is wrong with <paramref name="configuration"/> read whole as a <paramref name="type"/> (a file of its own,
    /// such as the gateway's routes file): keys the type does not have, a single value where a list or object belongs,
    /// and values the binder cannot convert. Keys are relative to the configuration's root, in order.
    /// </summary>
    public static IReadOnlyList<ShapeProblem> CheckShape(Type type, IConfiguration configuration)
    {
        var root = Build(type, Instance(type), depth: 0);
        var problems = new List<ShapeProblem>();
        var unknown = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in configuration.AsEnumerable(makePathsRelative: true))
        {
            var segments = key.Split(':');
            if (Unknown(root, segments) is { } miss)
            {
                if (unknown.Add(miss.Key))
                {
                    problems.Add(new(miss.Path, miss.Name, $"unknown field \"{miss.Name}\"{(miss.Nearest is null ? "" : $" (did you mean \"{miss.Nearest}\"?)")}"));
                }

                continue;
            }

            if (string.IsNullOrEmpty(value) || Resolve(root, key) is not { } node)
            {
                continue;
            }

            var name = segments[^1];
            var path = string.Join(':', segments[..^1]);
            if (!node.IsScalar)
            {
                problems.Add(new(path, name, $"field \"{name}\": '{value}' is a single value; it must be {(node.Item is null ? "an object" : "a list, e.g. [\"" + value + "\"]")}."));
            }
            else if (ValueProblem(value, node.Type!, node.Default) is { } problem)
            {
                problems.Add(new(path, name, $"field \"{name}\": {(LooksSecret(key) ? "the value (hidden)" : $"'{value}'")} {problem}"));
            }
        }

        return problems;
    }

    /// <summary>One problem found by <see cref="CheckShape"/>: the path of the object that has it, the field, the message.</summary>
    public sealed record ShapeProblem(string Path, string Field, string Message);

    private static Node? Resolve(Node root, string key)
    {
        var node = root;
        foreach (var segment in key.Split(':'))
        {
            node = node.Children.GetValueOrDefault(segment) ?? node.Item;
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    /// <summary>A typo, not another word: at most one edit in a short name, two in a longer one.</summary>
    private static bool IsNear(string typed, string known) =>
        !typed.Equals(known, StringComparison.OrdinalIgnoreCase) && Distance(typed, known) <= (known.Length <= 5 ? 1 : Math.Max(2, known.Length / 4));

    /// <summary>Levenshtein distance, case-insensitive.</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToUpperInvariant();
        b = b.ToUpperInvariant();
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    /// <summary>One configuration key and what may be below it.</summary>
    private sealed class Node
    {
        public Dictionary<string, Node> Children { get; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>The element of a list or the value of a dictionary: any key segment leads here.</summary>
        public Node? Item { get; set; }

        /// <summary>Anything below is accepted (framework settings, free-form values).</summary>
        public bool OpenEnded { get; set; }

        /// <summary>The bound type, for scalar values.</summary>
        public Type? Type { get; init; }

        public object? Default { get; init; }

        public bool IsScalar => Type is not null && Children.Count == 0 && Item is null && !OpenEnded;
    }

    private static Node BuildRoot()
    {
        var root = new Node();
        foreach (var key in FrameworkKeys)
        {
            root.Children[key] = new Node { OpenEnded = true };
        }

        foreach (var (section, type) in OptionsSections)
        {
            var parent = root;
            var path = section.Split(':');
            foreach (var segment in path[..^1])
            {
                parent = parent.Children.TryGetValue(segment, out var existing) ? existing : parent.Children[segment] = new Node();
            }

            var node = Build(type, Instance(type), depth: 0);
            if (parent.Children.TryGetValue(path[^1], out var framework))
            {
                node.OpenEnded = framework.OpenEnded;
            }

            parent.Children[path[^1]] = node;
        }

        // Still read, with a doctor finding (deprecated-setting): not unknown.
        var rateLimits = root.Children[RateLimits.RateLimitOptions.Section];
        rateLimits.Children[HostingOptions.DeprecatedTrustedProxiesKey.Split(':')[1]] = new Node { Item = new Node { Type = typeof(string) } };
        return root;
    }

    private static Node Build(Type type, object? instance, int depth)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(object) || typeof(IConfiguration).IsAssignableFrom(type) || depth > 8)
        {
            return new Node { OpenEnded = true };
        }

        if (type == typeof(string) || type == typeof(byte[]) || TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string)))
        {
            return new Node { Type = type, Default = instance };
        }

        if (ElementType(type) is { } element)
        {
            return new Node { Item = Build(element, Instance(element), depth + 1) };
        }

        var node = new Node();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var settable = property.SetMethod is { IsPublic: true };
            var scalar = property.PropertyType == typeof(string) || TypeDescriptor.GetConverter(property.PropertyType).CanConvertFrom(typeof(string));
            // The binder sets public setters, and fills get-only collections and objects in place.
            if (property.GetMethod is not { IsPublic: true } || property.GetIndexParameters().Length > 0 || (!settable && scalar))
            {
                continue;
            }

            var name = property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? property.Name;
            var value = instance is null ? null : property.GetValue(instance);
            node.Children[name] = Build(property.PropertyType, value ?? Instance(property.PropertyType), depth + 1);
        }

        return node;
    }

    /// <summary>The element type of a list, array or set, or the value type of a dictionary keyed by string.</summary>
    private static Type? ElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        if (!typeof(IEnumerable).IsAssignableFrom(type))
        {
            return null;
        }

        var generic = type.IsGenericType && type.IsInterface ? [type, .. type.GetInterfaces()] : type.GetInterfaces();
        var dictionary = generic.FirstOrDefault(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IDictionary<,>) || i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>)));
        if (dictionary is not null)
        {
            return dictionary.GetGenericArguments()[1];
        }

        return generic.FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))?.GetGenericArguments()[0] ?? typeof(object);
    }

    private static object? Instance(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsValueType)
        {
            return Activator.CreateInstance(type);
        }

        return !type.IsAbstract && !type.IsInterface && type != typeof(string) && type.GetConstructor(Type.EmptyTypes) is not null
            ? Activator.CreateInstance(type)
            : null;
    }
}

/// <summary>Settings that cannot be used as given, one line each saying which, why and what to set instead.</summary>
public sealed class ConfigurationException(IReadOnlyList<string> problems) : Exception(string.Join(System.Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
