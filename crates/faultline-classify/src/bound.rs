//! A bound on the distinct values aggregates keep per dimension, so that
//! memory does not follow hostile cardinality (a model name that embeds a
//! request id makes every call a new model).
//!
//! The first [`DISTINCT_LIMIT`] distinct values of a dimension, in input
//! order, keep their name; later new values are counted under [`OTHER`].
//! Aggregates apply the bound where per-batch parts are merged, in input
//! order, so the result is the same whatever the threads and chunks. Records
//! keep every value as logged; only the rollups, the incident scopes and the
//! summary's tallies fold.

use std::collections::HashSet;

use faultline_ingest::Shared;

/// Distinct values kept per dimension (models, services, keys, unexplained
/// messages). Real logs hold tens of models and services.
pub const DISTINCT_LIMIT: usize = 1000;

/// The name the values past the limit are counted under.
pub const OTHER: &str = "(other)";

/// The values of one dimension kept so far.
#[derive(Debug, Clone, Default)]
pub struct Bounded {
    kept: HashSet<Shared, foldhash::fast::RandomState>,
    /// Values folded into [`OTHER`] (a value counts each time it is folded).
    pub folded: u64,
}

impl Bounded {
    /// Keeps `value` when it was seen before or the limit is not reached,
    /// else replaces it with [`OTHER`]; true when it was replaced.
    pub fn fold(&mut self, value: &mut Option<Shared>) -> bool {
        let Some(text) = value else {
            return false;
        };
        if self.kept.contains(text) || &**text == OTHER {
            return false;
        }
        if self.kept.len() < DISTINCT_LIMIT {
            self.kept.insert(text.clone());
            return false;
        }
        *value = Some(Shared::intern(OTHER));
        self.folded += 1;
        true
    }

    /// Whether a text would be kept ([`Bounded::fold`] for owned strings).
    pub fn keeps(&mut self, text: &str) -> bool {
        let mut value = Some(Shared::from(text));
        !self.fold(&mut value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_values_keep_their_names_and_the_rest_fold() {
        let mut bound = Bounded::default();
        for i in 0..DISTINCT_LIMIT {
            let mut v = Some(Shared::from(format!("m{i}").as_str()));
            assert!(!bound.fold(&mut v));
        }
        let mut late = Some(Shared::from("late"));
        assert!(bound.fold(&mut late));
        assert_eq!(late.as_deref(), Some(OTHER));
        let mut early = Some(Shared::from("m7"));
        assert!(!bound.fold(&mut early), "a kept value stays kept");
        let mut none = None;
        assert!(!bound.fold(&mut none));
        assert_eq!(bound.folded, 1);
    }
}
