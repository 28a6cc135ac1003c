using Portcullis.Bench;

return await BenchApp.RunAsync(args, Console.In, Console.Out, Console.Error);
