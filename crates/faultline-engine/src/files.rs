//! Output files: written to a temporary name in the target directory, then
//! renamed, so a reader never sees half a file. (The `faultline` command
//! writes a whole set this way inside a staging directory, which it forces
//! to disk and makes current in one step.)
//!
//! A single file written here (`classify`'s records, `sample`'s logs) is
//! not forced to disk before its rename, no more than a parquet writer
//! forces its file: it can be made again from the logs.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file being written; it appears under its final name only on [`Atomic::commit`].
#[derive(Debug)]
pub struct Atomic {
    tmp: PathBuf,
    dest: PathBuf,
    writer: BufWriter<fs::File>,
}

impl Atomic {
    pub fn create(dir: &Path, name: &str) -> Result<Atomic> {
        let dest = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file =
            fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(Atomic {
            tmp,
            dest,
            writer: BufWriter::new(file),
        })
    }

    pub fn commit(mut self) -> Result<()> {
        let context = || format!("cannot write {}", self.tmp.display());
        self.writer.flush().with_context(context)?;
        fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        Ok(())
    }
}

impl Write for Atomic {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Drop for Atomic {
    fn drop(&mut self) {
        // Not committed (an error on the way): leave no temporary behind.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// A file written by a library that wants a path: it is written under a
/// temporary name in the target directory and renamed on [`Staged::commit`].
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    #[must_use]
    pub fn new(dir: &Path, name: &str) -> Staged {
        Staged {
            tmp: dir.join(format!(".{name}.tmp-{}", std::process::id())),
            dest: dir.join(name),
        }
    }

    /// Where to write.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn commit(self) -> Result<()> {
        fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.dest.display()
            )
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// A directory written under a temporary name beside its destination and
/// renamed on [`StagedDir::commit`], replacing an earlier one of that name.
#[derive(Debug)]
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedDir {
    #[must_use]
    pub fn new(dest: &Path) -> StagedDir {
        let name = dest
            .file_name()
            .map_or_else(|| "records".into(), |n| n.to_string_lossy().into_owned());
        StagedDir {
            tmp: dest.with_file_name(format!(".{name}.tmp-{}", std::process::id())),
            dest: dest.to_path_buf(),
            committed: false,
        }
    }

    /// Where to write.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn commit(mut self) -> Result<()> {
        if self.dest.is_dir() {
            fs::remove_dir_all(&self.dest).with_context(|| {
                format!("cannot replace {} of an earlier run", self.dest.display())
            })?;
        }
        fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// `2026-03-10T12:00:02.123Z`: how every output writes a time.
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}
