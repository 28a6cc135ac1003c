namespace Portcullis.Tests.Infrastructure;

/// <summary>The checkout the tests run from, for tests that read its files (docs, scripts, the tracked tree).</summary>
public static class Repository
{
    /// <summary>The directory holding Portcullis.slnx, above the test binaries.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Portcullis.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("No directory containing Portcullis.slnx above " + AppContext.BaseDirectory);
    }
}
