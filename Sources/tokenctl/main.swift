import TokenctlCommands

await Tokenctl.runMain()
