import TokenctlDrivers
import TokenctlModel
import TokenctlState

/// What repair did about one interrupted version, with a sentence saying so.
package struct RepairNote: Sendable, Hashable, CustomStringConvertible {
    /// How the version ended up.
    package enum Outcome: Sendable, Hashable {
        /// Delivered to every store and activated: the interrupted issue or rotation completed.
        case completed
        /// Revoked (or never issued): the token is issued again.
        case rolledBack
        /// Still pending: the issuer could not be asked, or could not revoke; the next run tries again.
        case leftPending
    }

    /// How the version ended up.
    package var outcome: Outcome
    /// The sentence, naming the token and version.
    package var description: String

    init(_ outcome: Outcome, _ description: String) {
        self.outcome = outcome
        self.description = description
    }

    /// The lines telling an operator what repair did: each repair on its own line when few, else counts by outcome (the
    /// audit log keeps one entry per repair, `tokenctl audit` shows them).
    package static func report(_ notes: [RepairNote], detailLimit: Int = 5) -> [String] {
        guard notes.count > detailLimit else { return notes.map { "repaired: \($0)" } }
        func count(_ outcome: Outcome) -> Int { notes.filter { $0.outcome == outcome }.count }
        var parts = ["\(count(.completed)) completed and activated", "\(count(.rolledBack)) rolled back (issued again by this run)"]
        if count(.leftPending) > 0 {
            parts.append("\(count(.leftPending)) left pending (an issuer could not be asked or could not revoke; the next run tries again)")
        }
        let changes = notes.count == 1 ? "1 change" : "\(notes.count) changes"
        return ["repaired \(changes) an interrupted run left unfinished: " + parts.joined(separator: ", ") + "; tokenctl audit lists each"]
    }
}

extension Engine {
    /// Finishes or undoes every issue a crash interrupted, so that nothing is issued twice, no credential
    /// stays valid at an issuer without being in state, and no active token lacks its secret in its stores.
    ///
    /// A pending version is one whose intent was recorded but not completed:
    /// - not yet issued (no credential id): the issuer is asked for the intent's idempotency key, and
    ///   anything found is revoked;
    /// - issued, and the secret can be had again: it is written to every store (those that can be read are written only
    ///   where they lack it), and the version becomes active (the rotation completes). The secret comes from a readable
    ///   store that holds it, else from an issuer that replays secrets under the intent's idempotency key. This is
    ///   what lets write-only stores, which cannot be read back, survive a crash between issue and delivery;
    /// - issued, secret nowhere to be had: it is lost, so the credential is revoked and the token issued again (which
    ///   overwrites whatever a write-only store may have received).
    package func repair(state current: RecordedState, now: Timestamp) async throws(StateError) -> [RepairNote] {
        var state = current
        guard state.tokens.values.contains(where: { $0.versions.contains { $0.status == .pending } }) else { return [] }
        var notes: [RepairNote] = []
        var writes: [StateWrite] = []
        for id in state.tokens.keys.sorted() {
            guard var record = state.tokens[id] else { continue }
            var changed = false
            for index in record.versions.indices where record.versions[index].status == .pending {
                let version = record.versions[index]
                let issuer = drivers.issuers[record.issuer]
                var credentialID = version.credentialID
                if credentialID.isEmpty, version.intentKey != nil, issuer == nil {
                    notes.append(RepairNote(.leftPending, "\(id) v\(version.version): issuer '\(record.issuer)' is not available to ask whether an interrupted issue "
                                 + "went through; it stays pending until it is"))
                    continue
                }
                if credentialID.isEmpty, let key = version.intentKey, let issuer {
                    do {
                        credentialID = try await issuer.credential(forIdempotencyKey: key) ?? ""
                    } catch {
                        // Not knowing whether the issuer made it is not "never issued": keep the intent for the next run.
                        notes.append(RepairNote(.leftPending, "\(id) v\(version.version): cannot ask issuer '\(record.issuer)' whether an interrupted issue went "
                                     + "through (\(SafeError.describe(error))); it stays pending and the next run checks again"))
                        continue
                    }
                }
                let recovered: Secret?
                do {
                    // Delivered nowhere (a version recorded before destinations were part of the intent): nothing to finish.
                    recovered = credentialID.isEmpty || version.deliveries.isEmpty ? nil : try await recoverSecret(version, issuer: issuer)
                } catch {
                    // The issuer could replay the secret but did not answer: try again next run rather than revoke.
                    notes.append(RepairNote(.leftPending, "\(id) v\(version.version): cannot get the secret of an interrupted issue back from issuer "
                                 + "'\(record.issuer)' (\(SafeError.describe(error))); it stays pending and the next run tries again"))
                    continue
                }
                if let secret = recovered {
                    // Roll forward: complete the delivery and activate.
                    var complete = true
                    for (position, delivery) in version.deliveries.enumerated() {
                        guard let store = drivers.stores[delivery.store] else { complete = false; continue }
                        // Recorded before the issue when the crash came first; a replayed secret gives it now.
                        let expected = contentFingerprint(key: delivery.key, secret: secret)
                        record.versions[index].deliveries[position].contentFingerprint = expected
                        let held = try? await (store as? any ReadableSecretStore)?.fingerprint(key: delivery.key)
                        if held != expected {
                            do { _ = try await store.write(puts: [delivery.key: secret], removes: []) } catch { complete = false }
                        }
                    }
                    if complete {
                        for other in record.versions.indices where record.versions[other].status == .active {
                            record.versions[other].status = .retiring
                            record.versions[other].retireAfter = now + record.overlap
                        }
                        record.versions[index].status = .active
                        record.versions[index].credentialID = credentialID
                        if record.versions[index].fingerprint.isEmpty, let rebuildable = issuer as? any RebuildableIssuer {
                            record.versions[index].fingerprint = rebuildable.fingerprint(of: secret)
                        }
                        notes.append(RepairNote(.completed, "\(id) v\(version.version): an apply stopped after issuing it; delivered to every store and activated"))
                        changed = true
                        continue
                    }
                }
                // Roll back: nothing usable was delivered; revoke whatever the issuer holds.
                if !credentialID.isEmpty {
                    do {
                        guard let issuer else { throw RepairFailure.noIssuer }
                        try await issuer.revoke([credentialID], now: now)
                    } catch {
                        notes.append(RepairNote(.leftPending, "\(id) v\(version.version): cannot revoke credential \(credentialID) left by an interrupted apply "
                                     + "(\(SafeError.describe(error))); it stays pending and the next apply tries again"))
                        continue
                    }
                }
                record.versions[index].status = .revoked
                record.versions[index].credentialID = credentialID
                notes.append(RepairNote(.rolledBack, "\(id) v\(version.version): an apply stopped before its secret was stored; "
                             + (credentialID.isEmpty ? "it was never issued" : "credential \(credentialID) revoked") + "; it will be issued again"))
                changed = true
            }
            if changed {
                state.tokens[id] = record
                writes.append(.upsert(record))
            }
        }
        // Each repair's audit entry goes with the state write that records it.
        let entries = auditor.map { auditor in notes.map { auditor.repairEntry($0.description) } } ?? []
        if writes.isEmpty {
            try await auditor?.append(entries)
        } else if let auditor {
            _ = try await auditor.write(writes, to: drivers.state, expectedSerial: state.serial, audit: entries)
        } else {
            _ = try await drivers.state.write(writes, expectedSerial: state.serial)
        }
        return notes
    }

    /// The secret of a version: read back from a readable store that holds it (checked against the recorded
    /// fingerprint), else replayed by its issuer under the intent's idempotency key. Repair and redelivery share it.
    func recoverSecret(_ version: CredentialVersion, issuer: (any CredentialIssuer)?) async throws -> Secret? {
        for delivery in version.deliveries {
            guard let store = drivers.stores[delivery.store] as? any ReadableSecretStore,
                  let held = try? await store.read(key: delivery.key) else { continue }
            if contentFingerprint(key: delivery.key, secret: held) == delivery.contentFingerprint { return held }
        }
        guard let replaying = issuer as? any SecretReplaying, let key = version.intentKey else { return nil }
        return try await replaying.replaySecret(forIdempotencyKey: key)
    }
}

enum RepairFailure: Error {
    case noIssuer
}
