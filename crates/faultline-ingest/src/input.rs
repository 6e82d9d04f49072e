//! Finding inputs: files, directories (recursive, sorted), globs and `-` for stdin.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file on disk.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl Input {
    /// The name used in records, quarantine entries and messages.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "-".to_owned(),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Expands command-line arguments into inputs, in a stable order.
///
/// A directory is walked recursively in file-name order (hidden files
/// included, symlinks followed, loops reported); a glob's matches are sorted. A
/// file named twice is read once. Arguments that match nothing, and directory
/// entries that cannot be read, are returned as errors beside the inputs that
/// were found, so a caller can go on with the rest.
pub fn discover<P: AsRef<Path>>(args: &[P]) -> (Vec<Input>, Vec<Error>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |path: PathBuf, inputs: &mut Vec<Input>| {
        let identity = path.canonicalize().unwrap_or_else(|_| path.clone());
        if seen.insert(identity) {
            inputs.push(Input::File(path));
        }
    };
    let mut stdin_seen = false;
    for arg in args {
        let path = arg.as_ref();
        if path.as_os_str() == "-" {
            if !stdin_seen {
                stdin_seen = true;
                inputs.push(Input::Stdin);
            }
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut inputs, &mut errors, &mut push),
            Ok(_) => push(path.to_path_buf(), &mut inputs),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let text = path.to_string_lossy();
                if text.contains(['*', '?', '[']) {
                    expand_glob(&text, &mut inputs, &mut errors, &mut push);
                } else {
                    errors.push(Error::NotFound {
                        path: path.to_path_buf(),
                    });
                }
            }
            Err(source) => errors.push(Error::Open {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
    (inputs, errors)
}

fn walk(
    dir: &Path,
    inputs: &mut Vec<Input>,
    errors: &mut Vec<Error>,
    push: &mut impl FnMut(PathBuf, &mut Vec<Input>),
) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => push(entry.into_path(), inputs),
            Ok(_) => {}
            Err(err) => {
                let path = err.path().unwrap_or(dir).to_path_buf();
                let source = match err.into_io_error() {
                    Some(io) => io,
                    None => std::io::Error::other("symlink loop"),
                };
                errors.push(Error::Open { path, source });
            }
        }
    }
}

fn expand_glob(
    pattern: &str,
    inputs: &mut Vec<Input>,
    errors: &mut Vec<Error>,
    push: &mut impl FnMut(PathBuf, &mut Vec<Input>),
) {
    let paths = match glob::glob(pattern) {
        Ok(paths) => paths,
        Err(err) => {
            errors.push(Error::Glob {
                pattern: pattern.to_owned(),
                reason: err.msg.to_owned(),
            });
            return;
        }
    };
    let mut matched: Vec<PathBuf> = Vec::new();
    for entry in paths {
        match entry {
            Ok(path) => matched.push(path),
            Err(err) => errors.push(Error::Open {
                path: err.path().to_path_buf(),
                source: std::io::Error::new(err.error().kind(), err.error().to_string()),
            }),
        }
    }
    if matched.is_empty() {
        errors.push(Error::NotFound {
            path: PathBuf::from(pattern),
        });
    }
    matched.sort();
    for path in matched {
        if path.is_dir() {
            walk(&path, inputs, errors, push);
        } else {
            push(path, inputs);
        }
    }
}
