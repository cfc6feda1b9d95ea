import Testing
@testable import TokenctlModel

@Suite struct OutOfLineTests {
    private struct Holder: Hashable {
        @OutOfLine var window: RotationWindow?
    }

    @Test func keepsValueSemantics() throws {
        let window = try RotationWindow(parsing: "Mon-Fri 09:00-17:00 UTC")
        var original = Holder(window: window)
        var copy = original
        copy.window = try RotationWindow(parsing: "daily 01:00-02:00 UTC")
        #expect(original.window == window)
        #expect(copy.window != window)
        original.window = nil
        #expect(original.window == nil)
        #expect(copy.window != nil)
    }

    @Test func comparesAndHashesByValue() throws {
        let first = Holder(window: try RotationWindow(parsing: "Mon-Fri 09:00-17:00 UTC"))
        let second = Holder(window: try RotationWindow(parsing: "Mon-Fri 09:00-17:00 UTC"))
        #expect(first == second)
        #expect(first.hashValue == second.hashValue)
        #expect(Set([first, second]).count == 1)
        #expect(first != Holder(window: nil))
        #expect(Holder(window: nil) == Holder(window: nil))
    }

    @Test func tokensStaySmall() {
        // The exception and the rotation window are rare; out of line they cost a pointer each in every token.
        #expect(MemoryLayout<Token>.stride <= 256)
    }
}
