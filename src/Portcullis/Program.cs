using Portcullis.Cli;

return await CliApp.RunAsync(args, Console.In, Console.Out, Console.Error);

/// <summary>Entry point; public so tests and tools can find the assembly.</summary>
public partial class Program;
