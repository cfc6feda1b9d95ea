import TokenctlCommands

// Only the executable configures logging: libraries take a Logger. See LogSetup for the level and format switches.
LogSetup.bootstrap(arguments: CommandLine.arguments)

await Tokenctl.runMain()
