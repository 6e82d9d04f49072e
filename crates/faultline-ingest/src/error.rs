use std::path::PathBuf;

/// An input that could not be found, opened or read to its end.
///
/// Bad lines are not errors: they are quarantined as [`crate::BadLine`]s. These
/// stop one input; the run still finishes the others.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path that is neither a file, a directory nor a glob with matches.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A glob pattern that does not parse.
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    Glob {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory that could not be opened or listed.
    #[error("{}: {source}", path.display())]
    Open {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A read that failed part-way (a truncated or corrupt gzip or zstd stream,
    /// an I/O error). Lines before `last_good_line` were ingested.
    #[error("{}: read failed after line {last_good_line} (byte {offset}): {source}", path.display())]
    Read {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// The last complete line that was read.
        last_good_line: u64,
        /// Decompressed bytes read before the failure.
        offset: u64,
        /// The I/O or decompression error.
        source: std::io::Error,
    },
    /// A file whose size changed while it was read (still being written, or
    /// rotated); the lines read were processed.
    #[error("{}: file changed size while being read ({before} -> {after} bytes); its lines up to then were read; re-run on a stable copy for all of them", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// Size when opened.
        before: u64,
        /// Size after reading.
        after: u64,
    },
    /// A worker thread pool that could not be started.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// Why it failed.
        reason: String,
    },
}
