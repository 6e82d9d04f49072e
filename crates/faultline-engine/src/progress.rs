//! What a run tells its caller while it goes: a front door draws it (the
//! command line's progress bar) or ignores it (`()`).

use std::sync::Arc;

/// Told of each batch read and of each later step, on the calling thread.
pub trait Progress {
    /// A batch of `calls` was read; it reached `offset` bytes into `file`.
    fn batch(&mut self, calls: usize, reached: Option<(&Arc<str>, u64)>);
    /// The run moved on to `what` (after the read).
    fn step(&self, what: &str);
}

/// No progress shown.
impl Progress for () {
    fn batch(&mut self, _: usize, _: Option<(&Arc<str>, u64)>) {}
    fn step(&self, _: &str) {}
}
