//! Settings shared by the property-based fuzz tests of the parsers.

use proptest::prelude::ProptestConfig;

/// 1000 cases per property, or `PROPTEST_CASES` for a longer run; failures are not persisted
/// to files beside the sources.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
