/// The events of one file with aliases expanded (within a budget) and nesting bounded.
///
/// Anchored nodes are recorded as they stream past; an alias replays the recording.
/// The decoder can also capture a node and push it back, to read a document's `spec`
/// once its `kind` is known.
final class EventStream {
    private let reader: YAMLEventReader
    private let limits: DecodingLimits
    private var replay: [(events: [YAMLEvent], index: Int)] = []
    private var anchors: [String: [YAMLEvent]] = [:]
    private var recorders: [(name: String, events: [YAMLEvent], depth: Int)] = []
    private var aliasEventsThisDocument = 0
    private(set) var depth = 0

    init(reader: YAMLEventReader, limits: DecodingLimits) {
        self.reader = reader
        self.limits = limits
    }

    /// The next event, from a replay if one is in progress, else from libyaml.
    func next() throws(FatalDecodingError) -> YAMLEvent {
        // Nearly every event comes straight from libyaml with nothing replayed or recorded.
        if replay.isEmpty && recorders.isEmpty {
            let event = try reader.next()
            switch event.kind {
            case .scalar where !event.hasAnchor:
                return event  // nothing to track
            case .alias:
                try expandAlias(event)
            default:
                try track(event, fromReplay: false)
                return event
            }
        }
        var event: YAMLEvent
        var fromReplay: Bool
        while true {
            if let last = replay.indices.last {
                if replay[last].index < replay[last].events.count {
                    event = replay[last].events[replay[last].index]
                    replay[last].index += 1
                    fromReplay = true
                } else {
                    replay.removeLast()
                    continue
                }
            } else {
                event = try reader.next()
                fromReplay = false
            }
            if event.kind == .alias {
                try expandAlias(event)
                continue
            }
            break
        }
        try track(event, fromReplay: fromReplay)
        return event
    }

    /// Pushes events back so that the following `next()` calls return them in order.
    func pushBack(_ events: [YAMLEvent]) {
        guard !events.isEmpty else { return }
        replay.append((events, 0))
    }

    /// Reads the rest of a node whose first event is `first`, returning all its events.
    func capture(startingWith first: YAMLEvent) throws(FatalDecodingError) -> [YAMLEvent] {
        var events = [first]
        guard first.kind == .mappingStart || first.kind == .sequenceStart else { return events }
        var level = 1
        while level > 0 {
            let event = try next()
            events.append(event)
            switch event.kind {
            case .mappingStart, .sequenceStart: level += 1
            case .mappingEnd, .sequenceEnd: level -= 1
            case .documentEnd, .streamEnd: level = 0
            default: break
            }
        }
        return events.map { var copy = $0; copy.hasAnchor = false; return copy }
    }

    private func expandAlias(_ alias: YAMLEvent) throws(FatalDecodingError) {
        guard let events = anchors[alias.value] else {
            throw FatalDecodingError(
                line: Int(alias.line), column: Int(alias.column), code: "unknown-anchor",
                message: "alias '*\(alias.value)' refers to no anchor defined before it in this document; define '&\(alias.value)' first")
        }
        aliasEventsThisDocument += events.count
        if aliasEventsThisDocument > limits.maxAliasEvents {
            throw FatalDecodingError(
                line: Int(alias.line), column: Int(alias.column), code: "alias-expansion",
                message: "aliases in this document expand to more than \(limits.maxAliasEvents) values "
                    + "(an alias expansion bomb?); write the values out or use fewer nested aliases")
        }
        guard replay.count < limits.maxDepth else {
            throw FatalDecodingError(
                line: Int(alias.line), column: Int(alias.column), code: "alias-expansion",
                message: "aliases are nested more than \(limits.maxDepth) levels deep; flatten them")
        }
        replay.append((events, 0))
    }

    private func track(_ event: YAMLEvent, fromReplay: Bool) throws(FatalDecodingError) {
        switch event.kind {
        case .mappingStart, .sequenceStart:
            depth += 1
            if depth > limits.maxDepth {
                throw FatalDecodingError(
                    line: Int(event.line), column: Int(event.column), code: "too-deep",
                    message: "nesting is deeper than \(limits.maxDepth) levels; manifests need only a few")
            }
        case .mappingEnd, .sequenceEnd:
            depth -= 1
        case .documentStart, .documentEnd:
            anchors.removeAll(keepingCapacity: true)
            recorders.removeAll()
            aliasEventsThisDocument = 0
            depth = 0
        default:
            break
        }
        guard !recorders.isEmpty || (!fromReplay && event.hasAnchor) else { return }
        var copy = event
        copy.hasAnchor = false
        for index in recorders.indices {
            recorders[index].events.append(copy)
        }
        if !fromReplay && event.hasAnchor {
            recorders.append((reader.lastAnchor, [copy], 0))
        }
        // Close recordings whose node just ended.
        var index = recorders.count - 1
        while index >= 0 {
            switch event.kind {
            case .mappingStart, .sequenceStart: recorders[index].depth += 1
            case .mappingEnd, .sequenceEnd: recorders[index].depth -= 1
            default: break
            }
            if recorders[index].depth == 0 {
                let finished = recorders.remove(at: index)
                anchors[finished.name] = finished.events
            }
            index -= 1
        }
    }
}
