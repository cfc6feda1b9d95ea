#if canImport(Glibc)
import Glibc
#endif
import TokenctlCommands

#if canImport(Glibc)
// One malloc arena: glibc's default of one per thread (up to 8 per core) fragments the heap of a large apply across
// arenas; at 100,000 tokens that was a fifth of the peak memory, for no measurable speed. `mallopt` is looked up
// rather than imported because Swift's Glibc module does not include <malloc.h>; -8 is its M_ARENA_MAX.
if let mallopt = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
    _ = unsafeBitCast(mallopt, to: (@convention(c) (Int32, Int32) -> Int32).self)(-8, 1)
}
#endif

// Only the executable configures logging: libraries take a Logger. See LogSetup for the level and format switches.
LogSetup.bootstrap(arguments: CommandLine.arguments)

await Tokenctl.runMain()
