import TestSupport

/// The shared manifest text, under the name the end-to-end tests use.
typealias ManifestText = TestSupport.ManifestText
