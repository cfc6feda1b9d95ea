extension String {
    /// Whether the text contains ASCII white space (space, tab, CR, LF), checked on bytes.
    var containsWhitespace: Bool {
        utf8.contains { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 || $0 == 11 || $0 == 12 }
    }
}
