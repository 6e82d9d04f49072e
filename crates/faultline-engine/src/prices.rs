//! List prices of models, for what a failed call a provider answered cost
//! when its log states no cost. The table is data (`config/prices.toml`,
//! with its source and date); a user's file adds or replaces entries. A
//! model not in the table has an unknown cost, never a guess.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The table built in: `config/prices.toml`.
const DEFAULTS: &str = include_str!("../config/prices.toml");

/// US dollars per million tokens, by model.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    models: HashMap<String, Price>,
    /// Where the prices come from (the built-in table's source, then any
    /// file the user gave).
    pub source: String,
}

/// One model's price.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Dollars per million prompt (input) tokens.
    pub input: f64,
    /// Dollars per million completion (output) tokens.
    pub output: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: Option<String>,
    #[serde(default)]
    models: HashMap<String, Price>,
}

impl Default for Prices {
    fn default() -> Self {
        Prices::defaults()
    }
}

impl Prices {
    /// The built-in table.
    ///
    /// # Panics
    /// Never: the built-in table is parsed by a test.
    #[must_use]
    pub fn defaults() -> Prices {
        let mut prices = Prices {
            models: HashMap::new(),
            source: String::new(),
        };
        prices
            .add(DEFAULTS, "config/prices.toml")
            .unwrap_or_else(|e| panic!("the built-in price table: {e:#}"));
        prices
    }

    /// Adds the entries of the TOML file at `path` (the built-in table's
    /// shape), replacing those of the same models.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the price table {}", path.display()))?;
        self.add(&text, &path.display().to_string())
    }

    fn add(&mut self, text: &str, name: &str) -> Result<()> {
        let file: File =
            toml::from_str(text).with_context(|| format!("{name} is not a price table"))?;
        for (model, price) in file.models {
            let valid = |v: f64| v.is_finite() && v >= 0.0;
            anyhow::ensure!(
                valid(price.input) && valid(price.output),
                "{name}: the price of {model} is not a number of dollars >= 0"
            );
            self.models.insert(model.to_ascii_lowercase(), price);
        }
        let source = file.source.unwrap_or_else(|| name.to_owned());
        if self.source.is_empty() {
            self.source = source;
        } else {
            self.source = format!("{}; {source}", self.source);
        }
        Ok(())
    }

    /// The price of `model` as logged: its own entry, else the entry of
    /// the name without a provider prefix (`openai/gpt-4o`) or a date
    /// suffix (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`).
    #[must_use]
    pub fn of(&self, model: &str) -> Option<Price> {
        let lower = model.trim().to_ascii_lowercase();
        let bare = lower.rsplit('/').next().unwrap_or(&lower);
        let found = [lower.as_str(), bare, undated(bare)]
            .into_iter()
            .find_map(|name| self.models.get(name).copied());
        found
    }

    /// What `prompt` and `completion` tokens of `model` cost.
    #[must_use]
    pub fn cost(&self, model: &str, prompt: u32, completion: u32) -> Option<f64> {
        let price = self.of(model)?;
        Some((f64::from(prompt) * price.input + f64::from(completion) * price.output) / 1e6)
    }
}

/// A model name without its date suffix: `-YYYY-MM-DD` or `-YYYYMMDD`.
fn undated(name: &str) -> &str {
    // Bytes, compared with ASCII: a '-' found is a char boundary.
    let shape_of = |tail: &[u8], shape: &[u8]| {
        tail.len() == shape.len()
            && tail.iter().zip(shape).all(|(&b, &s)| match s {
                b'9' => b.is_ascii_digit(),
                _ => b == s,
            })
    };
    let bytes = name.as_bytes();
    for shape in [&b"-9999-99-99"[..], b"-99999999"] {
        if let Some(at) = bytes.len().checked_sub(shape.len()) {
            if shape_of(&bytes[at..], shape) {
                return &name[..at];
            }
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_prices_common_models_and_no_others() {
        let prices = Prices::defaults();
        assert!(
            prices.source.contains("litellm 1.110.0"),
            "{}",
            prices.source
        );
        let gpt4o = prices.of("gpt-4o").expect("gpt-4o is priced");
        assert!((gpt4o.input - 2.5).abs() < 1e-9 && (gpt4o.output - 10.0).abs() < 1e-9);
        // 1,000 prompt and 500 completion tokens of gpt-4o-mini.
        let cost = prices.cost("gpt-4o-mini", 1_000, 500).unwrap();
        assert!(
            (cost - (1_000.0 * 0.15 + 500.0 * 0.6) / 1e6).abs() < 1e-12,
            "{cost}"
        );
        assert_eq!(prices.of("openai/gpt-4o"), Some(gpt4o));
        assert_eq!(prices.of("GPT-4o-2024-08-06"), Some(gpt4o));
        assert!(prices.of("claude-sonnet-4-5-20250929").is_some());
        // Not a prefix match: gpt-4o-mini is not gpt-4o, and an unknown
        // model has no price.
        assert_ne!(prices.of("gpt-4o-mini"), Some(gpt4o));
        assert_eq!(prices.of("my-finetune-v3"), None);
        assert_eq!(prices.cost("my-finetune-v3", 10, 10), None);
    }

    #[test]
    fn a_user_table_adds_and_replaces_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "[models.\"gpt-4o\"]\ninput = 1\noutput = 2\n[models.\"my-finetune-v3\"]\ninput = 3\noutput = 4\n",
        )
        .unwrap();
        let mut prices = Prices::defaults();
        prices.add_file(&path).unwrap();
        assert_eq!(
            prices.of("gpt-4o"),
            Some(Price {
                input: 1.0,
                output: 2.0
            })
        );
        assert_eq!(
            prices.of("my-finetune-v3"),
            Some(Price {
                input: 3.0,
                output: 4.0
            })
        );
        assert!(prices.source.ends_with("prices.toml"), "{}", prices.source);
        std::fs::write(&path, "[models.x]\ninput = -1\noutput = 2\n").unwrap();
        let err = Prices::defaults().add_file(&path).unwrap_err();
        assert!(format!("{err:#}").contains("price of x"), "{err:#}");
        std::fs::write(&path, "[models.x]\nin = 1\n").unwrap();
        let err = Prices::defaults().add_file(&path).unwrap_err();
        assert!(format!("{err:#}").contains("not a price table"), "{err:#}");
    }

    #[test]
    fn date_suffixes_are_read_in_both_shapes() {
        assert_eq!(undated("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(undated("claude-sonnet-4-5-20250929"), "claude-sonnet-4-5");
        assert_eq!(undated("gpt-4o"), "gpt-4o");
        assert_eq!(undated("o3"), "o3");
        assert_eq!(undated("modèle-é"), "modèle-é");
    }
}
