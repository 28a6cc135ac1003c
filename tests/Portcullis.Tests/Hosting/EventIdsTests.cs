using System.Reflection;
using System.Text.RegularExpressions;
using Portcullis.Hosting;
using Portcullis.Tests.Infrastructure;

namespace Portcullis.Tests.Hosting;

/// <summary>
/// Issue 21: log event ids live in one catalogue (<see cref="EventIds"/>), each feature in its own block, and an id
/// names one event only — a log query or an alert that keys on an id must not match two different events.
/// </summary>
public sealed partial class EventIdsTests
{
    private static List<(Type Feature, int Block)> Features() =>
        typeof(EventIds).GetNestedTypes(BindingFlags.NonPublic | BindingFlags.Public)
            .Select(t => (t, (int)t.GetField("Block", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static)!.GetRawConstantValue()!))
            .ToList();

    private static IEnumerable<(string Name, int Id)> Ids(Type feature) =>
        feature.GetFields(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(int) && f.Name != "Block")
            .Select(f => ($"{feature.Name}.{f.Name}", (int)f.GetRawConstantValue()!));

    [Fact]
    public void Every_event_id_in_the_catalogue_is_unique()
    {
        var features = Features();
        Assert.True(features.Count >= 7, $"only {features.Count} feature blocks found: the reflection no longer sees the catalogue");

        var all = features.SelectMany(f => Ids(f.Feature)).ToList();
        var duplicates = all.GroupBy(e => e.Id).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Name))}").ToList();

        Assert.True(duplicates.Count == 0, "event ids used twice: " + string.Join("; ", duplicates));
        Assert.Contains(all, e => e.Name == "Storage.DatabaseUnavailable");
    }

    [Fact]
    public void Every_feature_has_its_own_block_and_its_ids_stay_inside_it()
    {
        var features = Features();
        var sharedBlocks = features.GroupBy(f => f.Block).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(sharedBlocks);

        var outside = features
            .SelectMany(f => Ids(f.Feature).Where(e => e.Id < f.Block || e.Id > f.Block + 999).Select(e => $"{e.Name} = {e.Id} (block {f.Block})"))
            .ToList();
        Assert.True(outside.Count == 0, "ids outside their feature's block: " + string.Join("; ", outside));
    }

    /// <summary>A <c>[LoggerMessage]</c> whose event id is a number rather than a catalogue entry.</summary>
    [GeneratedRegex(@"LoggerMessage\s*\(\s*(?:EventId\s*=\s*)?-?\d")]
    private static partial Regex BareEventId();

    [Fact]
    public void No_LoggerMessage_in_src_uses_a_bare_number()
    {
        var src = Path.Combine(Repository.Root, "src");
        var offenders = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !p.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(p => BareEventId().IsMatch(File.ReadAllText(p)))
            .Select(p => Path.GetRelativePath(Repository.Root, p))
            .ToList();

        Assert.True(offenders.Count == 0, "use an EventIds entry (src/Portcullis/Hosting/EventIds.cs) in: " + string.Join(", ", offenders));
    }
}
