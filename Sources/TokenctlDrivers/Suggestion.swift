/// "Did you mean …?" hints from edit distance.
package enum Suggestion {
    /// ` (did you mean 'x'?)` for the closest candidate within a small distance, else an empty string.
    package static func didYouMean(_ word: String, among candidates: [String]) -> String {
        guard let best = closest(to: word, among: candidates) else { return "" }
        return " (did you mean '\(best)'?)"
    }

    package static func closest(to word: String, among candidates: [String]) -> String? {
        // No field name is this long: a huge key (hostile input) gets no suggestion rather than a costly comparison.
        guard word.utf8.count <= 128 else { return nil }
        let limit = max(1, min(3, word.count / 3))
        var best: (String, Int)?
        for candidate in candidates where abs(candidate.count - word.count) <= limit {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            if distance <= limit, best.map({ distance < $0.1 }) ?? true { best = (candidate, distance) }
        }
        return best?.0
    }

    /// Levenshtein distance with adjacent transpositions counted as one edit.
    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previousPrevious[j - 2] + 1)
                }
            }
            (previousPrevious, previous, current) = (previous, current, previousPrevious)
        }
        return previous[b.count]
    }
}
