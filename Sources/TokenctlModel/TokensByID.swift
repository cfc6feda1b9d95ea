/// The desired tokens by id, as positions in the manifest set's array (the first of a repeated id wins).
///
/// ```swift
/// let tokens = TokensByID(manifests.tokens)
/// let owner = tokens[TokenID(namespace: "payments", name: "orders-api-ci")]?.owner
/// ```
///
/// Positions, not copies: a copy of every desired token was the largest allocation of an apply of 100,000.
package struct TokensByID: Sendable {
    private let tokens: [Token]
    private let positions: [TokenID: Int]

    /// Indexes `tokens`.
    package init(_ tokens: [Token]) {
        self.tokens = tokens
        var positions: [TokenID: Int] = [:]
        positions.reserveCapacity(tokens.count)
        for (position, token) in tokens.enumerated() where positions[token.id] == nil { positions[token.id] = position }
        self.positions = positions
    }

    /// The token of this id, if the manifests hold one.
    package subscript(id: TokenID) -> Token? { positions[id].map { tokens[$0] } }

    /// Whether the manifests hold a token of this id.
    package func contains(_ id: TokenID) -> Bool { positions[id] != nil }
}
