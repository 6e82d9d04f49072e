//! Long prompts that time out.

use std::fmt::Write as _;

use crate::collect::Event;
use crate::{Incident, Pattern, Severity};
use faultline_classify::StatusClass;

use super::wording::{label, percent, span, tokens_text};
use super::{group, Ctx};

impl Ctx<'_> {
    pub(super) fn long_context_timeout(&self, out: &mut Vec<Incident>) {
        let c = &self.config.long_context_timeout;
        if !c.enabled || self.data.edges.is_empty() {
            return;
        }
        let edges = &self.data.edges;
        let bucket_of = |tokens: u32| edges.partition_point(|&edge| edge <= tokens).max(1) - 1;
        let large_from = edges.partition_point(|&edge| edge < c.large_prompt_tokens);
        let timeouts = group(
            self.events(StatusClass::Timeout)
                .filter(|e| e.prompt_tokens.is_some()),
            |e| (e.scope.provider, e.scope.model.clone()),
        );
        for (key, events) in timeouts {
            let Some(calls) = self.data.buckets.get(&key) else {
                continue;
            };
            let mut timed_out = vec![0u64; edges.len()];
            for e in &events {
                timed_out[bucket_of(e.prompt_tokens.unwrap_or(0))] += 1;
            }
            let sum = |v: &[u64]| v.iter().sum::<u64>();
            let (large_n, small_n) = (sum(&timed_out[large_from..]), sum(&timed_out[..large_from]));
            let (large_calls, small_calls) = (sum(&calls[large_from..]), sum(&calls[..large_from]));
            if large_calls == 0 || (large_n as usize) < c.min_errors {
                continue;
            }
            let large_rate = large_n as f64 / large_calls as f64;
            let small_rate = if small_calls == 0 {
                0.0
            } else {
                small_n as f64 / small_calls as f64
            };
            if large_rate < c.min_rate || large_rate < c.min_ratio * small_rate {
                continue;
            }
            let large: Vec<&Event> = events
                .iter()
                .copied()
                .filter(|e| e.prompt_tokens.unwrap_or(0) >= c.large_prompt_tokens)
                .collect();
            if large.is_empty() {
                continue;
            }
            let mut inc = self.incident(
                Pattern::LongContextTimeout,
                Severity::Medium,
                &large,
                large_calls,
            );
            let mut table = String::new();
            for i in large_from..edges.len() {
                if calls[i] > 0 {
                    let upper = edges
                        .get(i + 1)
                        .map_or_else(|| "+".to_owned(), |e| format!("-{}", tokens_text(*e)));
                    let _ = write!(
                        table,
                        "{}{}{upper} {}/{}",
                        if table.is_empty() { "" } else { ", " },
                        tokens_text(edges[i]),
                        timed_out[i],
                        calls[i]
                    );
                }
            }
            inc.summary = format!(
                "{} of {} calls to {} with prompts of {} tokens or more timed out ({}), against {} of {} ({}) below; by prompt size: {table}; {}.",
                large_n,
                large_calls,
                label(&inc),
                tokens_text(c.large_prompt_tokens),
                percent(large_rate),
                small_n,
                small_calls,
                percent(small_rate),
                span(inc.start_ms, inc.end_ms),
            );
            out.push(inc);
        }
    }
}
