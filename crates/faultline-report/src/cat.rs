//! A low-cardinality text column as it gathers: a code per row into a
//! short list of the distinct values, found by address for static and
//! shared text, so a row costs a compare and a push. `pages` writes the
//! dictionary-encoded parquet pages straight from the codes.

use std::collections::HashMap;
use std::sync::Arc;

use faultline_ingest::Shared;

use crate::pages::NULL;
use crate::FastHash;

/// A low-cardinality text column: a code per row into `values`, the
/// distinct values in the order first seen.
#[derive(Clone, Default)]
pub(crate) struct Cat {
    pub(crate) codes: Vec<u32>,
    pub(crate) values: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, FastHash>,
    /// Codes of recently pushed values by address and length. Most values
    /// are static or interned, so equal values share an address and are
    /// found here without hashing or comparing text. Only addresses that
    /// cannot be reused while the column lives are entered: static text, and
    /// shared text the column holds a reference to (in `held`).
    recent: [(usize, usize, u32); RECENT],
    next_recent: usize,
    /// The entry of `recent` found last: most columns hold one value for
    /// long runs of rows, and it is tried first.
    last_hit: usize,
    held: Vec<Arc<str>>,
}

/// Addresses a [`Cat`] remembers.
const RECENT: usize = 8;

/// Shared values a [`Cat`] holds to keep their addresses unique; past that,
/// values are found by their text.
const HELD: usize = 64;

impl Cat {
    pub(crate) fn with_capacity(rows: usize) -> Cat {
        Cat {
            codes: Vec::with_capacity(rows),
            ..Cat::default()
        }
    }

    /// The code of `text`, added to the values if new.
    pub(crate) fn code(&mut self, text: &str) -> u32 {
        if let Some(&code) = self.index.get(text) {
            return code;
        }
        let code = self.values.len() as u32;
        self.values.push(text.into());
        self.index.insert(text.into(), code);
        code
    }

    fn recent(&mut self, text: &str) -> Option<u32> {
        let key = (text.as_ptr() as usize, text.len());
        if let Some(&(addr, len, code)) = self.recent.get(self.last_hit) {
            if (addr, len) == key {
                return Some(code);
            }
        }
        let hit = self
            .recent
            .iter()
            .position(|&(addr, len, _)| (addr, len) == key)?;
        self.last_hit = hit;
        Some(self.recent[hit].2)
    }

    fn remember(&mut self, text: &str, code: u32) {
        self.recent[self.next_recent] = (text.as_ptr() as usize, text.len(), code);
        self.last_hit = self.next_recent;
        self.next_recent = (self.next_recent + 1) % RECENT;
    }

    pub(crate) fn push(&mut self, value: Option<&str>) {
        let code = value.map_or(NULL, |text| self.code(text));
        self.codes.push(code);
    }

    /// Pushes static text, found by its address after the first time.
    pub(crate) fn push_static(&mut self, text: &'static str) {
        let code = if let Some(code) = self.recent(text) {
            code
        } else {
            let code = self.code(text);
            self.remember(text, code);
            code
        };
        self.codes.push(code);
    }

    /// Pushes shared text, found by its address while the column holds it.
    pub(crate) fn push_shared(&mut self, value: Option<&Arc<str>>) {
        let Some(shared) = value else {
            self.codes.push(NULL);
            return;
        };
        let code = if let Some(code) = self.recent(shared) {
            code
        } else {
            let code = self.code(shared);
            if self.held.len() < HELD {
                self.held.push(Arc::clone(shared));
                self.remember(shared, code);
            }
            code
        };
        self.codes.push(code);
    }

    /// Pushes a record's shared text: interned text is static.
    pub(crate) fn push_text(&mut self, value: Option<&Shared>) {
        match value {
            Some(Shared::Static(text)) => self.push_static(text),
            Some(Shared::Counted(text)) => self.push_shared(Some(text)),
            None => self.codes.push(NULL),
        }
    }

    pub(crate) fn select(&self, rows: &[usize]) -> Cat {
        Cat {
            codes: rows.iter().map(|&row| self.codes[row]).collect(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_get_one_code_whatever_their_address() {
        let mut cat = Cat::default();
        let a: Arc<str> = Arc::from("gpt-4o");
        let b: Arc<str> = Arc::from("gpt-4o");
        let c: Arc<str> = Arc::from("gpt-4o-mini");
        for value in [Some(&a), Some(&b), Some(&c), None, Some(&a)] {
            cat.push_shared(value);
        }
        cat.push(Some("gpt-4o"));
        let mini: &'static str = "gpt-4o-mini";
        // Same address, different length: a different text.
        cat.push_static(mini);
        cat.push_static(&mini[..6]);
        cat.push_static(mini);
        assert_eq!(cat.codes, [0, 0, 1, NULL, 0, 0, 1, 0, 1]);
        assert_eq!(cat.values, ["gpt-4o".into(), "gpt-4o-mini".into()]);
    }

    #[test]
    fn more_shared_values_than_a_column_holds_still_get_their_codes() {
        let mut cat = Cat::default();
        let values: Vec<Arc<str>> = (0..3 * HELD).map(|i| Arc::from(format!("m{i}"))).collect();
        for _ in 0..2 {
            for value in &values {
                cat.push_shared(Some(value));
            }
        }
        let expected: Vec<u32> = (0..values.len() as u32).collect();
        assert_eq!(cat.codes[..values.len()], expected);
        assert_eq!(cat.codes[values.len()..], expected);
        assert_eq!(cat.held.len(), HELD);
    }
}
