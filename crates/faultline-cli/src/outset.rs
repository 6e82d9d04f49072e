//! The output set of a run: written whole in a staging directory, then made
//! current in one step, under a lock that keeps two runs out of one `--out`.
//!
//! What a reader of `--out` can rely on at every moment (docs/dashboards.md,
//! "While a run writes"):
//!
//! - **During a run** `--out` holds the previous run's complete set, untouched.
//!   The new set is written in `.NAME.faultline-PID/` beside it (a sibling,
//!   so that the final step is a rename within one file system), each file
//!   forced to disk before the set is made current.
//! - **The switch** is one `renameat2(RENAME_EXCHANGE)` of the two
//!   directories (Linux): a reader opening `out/summary.json` and then
//!   `out/records.parquet` sees both from one run, old or new. Files a reader
//!   holds open keep the old run's bytes until closed. Files in `--out` that
//!   are not outputs (a README, report's input records) are carried over as
//!   hard links first.
//! - **Where the exchange cannot be used** (not Linux; `--out` is the working
//!   directory or an ancestor of it, which the exchange would leave the shell
//!   in a deleted copy of; `--out` holds directories of its own; a file system
//!   without hard links; `--out` is a mount point, such as a container's
//!   volume, where the set is staged inside it, in `.faultline-PID/`), the
//!   files are renamed in one by one, `summary.json`
//!   last, after a journal naming the staged set was written and forced to
//!   disk. A run killed among those renames leaves the journal; the next run
//!   into that `--out` finishes the renames before anything else. Between two
//!   of the renames (microseconds) a reader can see files of both runs.
//! - **A run that fails or is killed** before the switch leaves `--out` as it
//!   was; the next run removes its staging directory.
//! - **The lock** is an advisory lock on `--out` itself (released by the
//!   kernel when the holder dies, however it dies); a second run refuses at
//!   once, exit 2, naming the holder by its staging directory (pid, since).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use faultline_engine::OUTPUTS;

/// Names the journal of a file-by-file switch in `--out`.
const JOURNAL: &str = ".faultline-switch";

/// An output set being written; see the module documentation.
pub(crate) struct OutputSet {
    /// `--out`, absolute.
    out: PathBuf,
    /// Where this run writes, beside `out`.
    staging: PathBuf,
    /// The names of the outputs this run writes.
    writes: Vec<String>,
    /// Outputs of an earlier run this one leaves as they are (report
    /// leaves analyze's records and quarantine).
    leaves: Vec<String>,
    /// Inputs of this run that live in `out` (report reads records there):
    /// carried into the new set, never removed.
    keep: Vec<PathBuf>,
    /// Held until the set is switched or abandoned.
    _lock: File,
    switched: bool,
}

impl std::fmt::Debug for OutputSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSet")
            .field("out", &self.out)
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

impl OutputSet {
    /// Locks `out` and opens an empty staging directory beside it. `writes`
    /// are the outputs this run will write, `leaves` those of an earlier run
    /// it leaves alone, `keep` its inputs (kept when they lie in `out`).
    /// Other outputs of an earlier run are removed by the switch.
    pub(crate) fn begin(
        out: &Path,
        writes: &[&str],
        leaves: &[&str],
        keep: &[PathBuf],
    ) -> Result<OutputSet> {
        Self::begin_staged(out, writes, leaves, keep, None)
    }

    /// [`OutputSet::begin`]; `inside` says whether to stage inside `--out`
    /// (`None`: when `--out` is a mount point).
    fn begin_staged(
        out: &Path,
        writes: &[&str],
        leaves: &[&str],
        keep: &[PathBuf],
        inside: Option<bool>,
    ) -> Result<OutputSet> {
        let out = absolute(out)?;
        let (parent, name) = parent_and_name(&out)?;
        let lock = lock(&parent, &name, &out)?;
        finish_interrupted_switch(&out)?;
        remove_stale_staging(&parent, &name, &out)?;
        // A `--out` that is a mount point of its own (a container's volume)
        // cannot be renamed, nor receive files renamed from beside it: its
        // set is staged inside it and switched file by file.
        let staging = if inside.unwrap_or_else(|| is_mount_point(&out, &parent)) {
            out.join(format!(".faultline-{}", std::process::id()))
        } else {
            parent.join(format!(".{name}.faultline-{}", std::process::id()))
        };
        fs::create_dir(&staging)
            .with_context(|| format!("cannot create staging directory {}", staging.display()))?;
        Ok(OutputSet {
            out,
            staging,
            writes: writes.iter().map(|&w| w.to_owned()).collect(),
            leaves: leaves.iter().map(|&w| w.to_owned()).collect(),
            keep: keep.iter().filter_map(|p| p.canonicalize().ok()).collect(),
            _lock: lock,
            switched: false,
        })
    }

    /// The directory the outputs are written to until [`OutputSet::switch`].
    pub(crate) fn dir(&self) -> &Path {
        &self.staging
    }

    /// Whether `path` is this set's (its `--out` or a staging directory):
    /// never read as a log.
    pub(crate) fn owns(&self, path: &Path) -> bool {
        let Ok(path) = path.canonicalize() else {
            return false;
        };
        if path.starts_with(&self.out) {
            return true;
        }
        let Ok((parent, name)) = parent_and_name(&self.out) else {
            return false;
        };
        let prefix = format!(".{name}.faultline-");
        path.ancestors().any(|p| {
            p.parent() == Some(parent.as_path())
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
    }

    /// Makes the staged set current: every file forced to disk, then one
    /// exchange of directories where the system has it, else a journaled
    /// rename of each file.
    pub(crate) fn switch(mut self) -> Result<()> {
        let beside = !self.staging.starts_with(&self.out);
        let carried = beside && self.carry_over()?;
        sync_tree(&self.staging)?;
        let exchange = carried && !holds_working_directory(&self.out);
        if exchange && exchange_dirs(&self.staging, &self.out)? {
            sync_parent(&self.out);
            // The staging path now holds the previous set.
            let _ = fs::remove_dir_all(&self.staging);
        } else {
            self.switch_file_by_file()?;
        }
        self.switched = true;
        Ok(())
    }

    /// Hard-links into the staging directory what `out` holds besides the
    /// outputs this run replaces or drops. False when something cannot be
    /// carried that way (a directory not faultline's own, no hard links):
    /// then the switch goes file by file and leaves those entries in place.
    fn carry_over(&self) -> Result<bool> {
        let Ok(entries) = fs::read_dir(&self.out) else {
            return Ok(true);
        };
        let mut linked_names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", self.out.display()))?;
            let name = entry.file_name();
            let from = entry.path();
            let to = self.staging.join(&name);
            if let Some(name) = name.to_str() {
                if name == JOURNAL || self.is_replaced(name, &from) {
                    continue;
                }
            }
            let linked = if from.is_dir() {
                is_partitioned(&from) && link_tree(&from, &to).is_ok()
            } else {
                fs::hard_link(&from, &to).is_ok()
            };
            if !linked {
                // What was linked goes again: the file-by-file switch
                // leaves every such entry where it is.
                for done in linked_names.iter().chain([&to]) {
                    let _ = fs::remove_dir_all(done).or_else(|_| fs::remove_file(done));
                }
                return Ok(false);
            }
            linked_names.push(to);
        }
        Ok(true)
    }

    /// Whether an entry of `out` is an output the new set replaces or drops
    /// (not one of this run's inputs, not a directory of the user's).
    fn is_replaced(&self, name: &str, path: &Path) -> bool {
        if !OUTPUTS.contains(&name) || self.leaves.iter().any(|l| l == name) || self.is_kept(path) {
            return false;
        }
        self.writes.iter().any(|w| w == name) || !path.is_dir() || is_partitioned(path)
    }

    fn is_kept(&self, path: &Path) -> bool {
        path.canonicalize()
            .is_ok_and(|p| self.keep.iter().any(|k| k.starts_with(&p)))
    }

    /// The switch where directories cannot be exchanged: a journal naming
    /// the staged set, forced to disk, then each output renamed into place
    /// (summary.json last), then the outputs of an earlier run this one does
    /// not write removed.
    fn switch_file_by_file(&self) -> Result<()> {
        let journal = self.out.join(JOURNAL);
        {
            let mut file = File::create(&journal)
                .with_context(|| format!("cannot write {}", journal.display()))?;
            writeln!(file, "{}", self.staging.display())?;
            file.sync_all()?;
        }
        sync_dir(&self.out);
        move_staged(&self.staging, &self.out)?;
        for name in OUTPUTS {
            let path = self.out.join(name);
            if self.writes.iter().any(|w| w == name)
                || !path.exists()
                || !self.is_replaced(name, &path)
            {
                continue;
            }
            if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            }
            .with_context(|| format!("cannot remove stale output {}", path.display()))?;
        }
        fs::remove_file(&journal)
            .with_context(|| format!("cannot remove {}", journal.display()))?;
        sync_dir(&self.out);
        let _ = fs::remove_dir_all(&self.staging);
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if !self.switched {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// `path` made absolute without resolving a last component that may not
/// exist yet (the parent is resolved, so `..` and symlinks are followed).
fn absolute(path: &Path) -> Result<PathBuf> {
    if let Ok(resolved) = path.canonicalize() {
        return Ok(resolved);
    }
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot resolve --out {}", path.display()))?;
    let mut resolved = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    Ok(resolved)
}

fn parent_and_name(out: &Path) -> Result<(PathBuf, String)> {
    match (out.parent(), out.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok((parent.to_path_buf(), name.to_owned())),
        _ => bail!(
            "--out {} must name a directory with a parent and a UTF-8 name",
            out.display()
        ),
    }
}

/// Takes the lock of `out` (created when missing), or refuses naming the run
/// that holds it. The lock is on the directory itself, so that no file is
/// left beside it; a directory switched away while this run waited for its
/// lock is let go, and the current one locked.
fn lock(parent: &Path, name: &str, out: &Path) -> Result<File> {
    for _ in 0..16 {
        fs::create_dir_all(out)
            .with_context(|| format!("cannot create output directory {}", out.display()))?;
        let dir = open_for_lock(out)?;
        match dir.try_lock() {
            Ok(()) => {
                if still_current(&dir, out) {
                    return Ok(dir);
                }
            }
            Err(fs::TryLockError::WouldBlock) => bail!(
                "{} is being written by another faultline run ({}); wait for it to end, \
                 or choose another --out",
                out.display(),
                holder(parent, name, out)
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", out.display()));
            }
        }
    }
    bail!("cannot lock {}: it keeps being replaced", out.display())
}

#[cfg(unix)]
fn open_for_lock(out: &Path) -> Result<File> {
    File::open(out).with_context(|| format!("cannot open {}", out.display()))
}

#[cfg(not(unix))]
fn open_for_lock(out: &Path) -> Result<File> {
    // A directory cannot be opened as a file here; without an exchange of
    // directories (Linux only), a file inside `out` stays put.
    let path = out.join(".faultline-lock");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot create lock file {}", path.display()))
}

/// Whether the locked handle is still the directory at `out`.
#[cfg(unix)]
fn still_current(dir: &File, out: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (dir.metadata(), fs::metadata(out)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_current(_: &File, _: &Path) -> bool {
    true
}

/// The run holding `out`'s lock, as its staging directory names it
/// (beside `out`, or inside it when `out` is a mount point).
fn holder(parent: &Path, name: &str, out: &Path) -> String {
    let beside = format!(".{name}.faultline-");
    let staged = |dir: &Path, prefix: &str| {
        fs::read_dir(dir).ok().and_then(|entries| {
            entries.flatten().find_map(|e| {
                let file_name = e.file_name().into_string().ok()?;
                let pid = file_name.strip_prefix(prefix)?.parse::<u32>().ok()?;
                let since = e.metadata().and_then(|m| m.modified()).ok().map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                });
                Some(match since {
                    Some(since) => format!("pid {pid}, writing since {since}"),
                    None => format!("pid {pid}"),
                })
            })
        })
    };
    staged(parent, &beside)
        .or_else(|| staged(out, ".faultline-"))
        .unwrap_or_else(|| "a process not named".to_owned())
}

/// Finishes a file-by-file switch a killed run left half done: its staged
/// set was complete and on disk before the journal was written.
fn finish_interrupted_switch(out: &Path) -> Result<()> {
    let journal = out.join(JOURNAL);
    let Ok(text) = fs::read_to_string(&journal) else {
        return Ok(());
    };
    let staging = PathBuf::from(text.trim_end_matches('\n'));
    if staging.is_dir() {
        move_staged(&staging, out)?;
        let _ = fs::remove_dir_all(&staging);
    }
    fs::remove_file(&journal).with_context(|| format!("cannot remove {}", journal.display()))?;
    sync_dir(out);
    tracing::info!(out = %out.display(), "finished the switch of an interrupted run");
    Ok(())
}

/// Renames every staged output into `out`, summary.json last: it is what a
/// reader checks first to tell a run's set complete.
fn move_staged(staging: &Path, out: &Path) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(staging)
        .with_context(|| format!("cannot read {}", staging.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| OUTPUTS.contains(&n.as_str()))
        .collect();
    names.sort_by_key(|n| (n == "summary.json", n.clone()));
    for name in names {
        let (from, to) = (staging.join(&name), out.join(&name));
        if from.is_dir() && to.is_dir() {
            // A directory cannot replace a non-empty one in one rename: the
            // old one goes aside first.
            let aside = staging.join(format!(".{name}.old"));
            fs::rename(&to, &aside)
                .with_context(|| format!("cannot move {} aside", to.display()))?;
        }
        fs::rename(&from, &to)
            .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Removes staging directories of runs into `out` that died before their
/// switch: a live one would hold the lock this run now holds. Temporary
/// files of versions that wrote them inside `out` go too.
fn remove_stale_staging(parent: &Path, name: &str, out: &Path) -> Result<()> {
    let prefix = format!(".{name}.faultline-");
    for entry in fs::read_dir(parent)
        .with_context(|| format!("cannot read {}", parent.display()))?
        .flatten()
    {
        let entry_name = entry.file_name();
        let Some(entry_name) = entry_name.to_str() else {
            continue;
        };
        if entry_name.starts_with(&prefix) && entry.path().is_dir() {
            // The run that just switched may still be removing its old set.
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a dead run's staging");
            }
        }
    }
    if let Ok(entries) = fs::read_dir(out) {
        for entry in entries.flatten() {
            let entry_name = entry.file_name();
            let Some(entry_name) = entry_name.to_str() else {
                continue;
            };
            let staged_inside = entry_name
                .strip_prefix(".faultline-")
                .is_some_and(|pid| pid.parse::<u32>().is_ok());
            if staged_inside {
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            if OUTPUTS
                .iter()
                .any(|o| entry_name.starts_with(&format!(".{o}.tmp-")))
            {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
    Ok(())
}

/// Whether `dir` holds only `date=...` partitions, as `--partition-by date` writes.
pub(crate) fn is_partitioned(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| e.file_name().to_string_lossy().starts_with("date="))
    })
}

/// Whether `dir` is on another file system than its parent.
#[cfg(unix)]
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(dir), fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_mount_point(_: &Path, _: &Path) -> bool {
    false
}

/// Whether the process's working directory is `dir` or inside it.
fn holds_working_directory(dir: &Path) -> bool {
    std::env::current_dir()
        .and_then(|cwd| cwd.canonicalize())
        .is_ok_and(|cwd| cwd.starts_with(dir))
}

/// Recreates the tree `from` at `to` with hard links to its files.
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else {
            fs::hard_link(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Forces every file and directory under `dir` to disk.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot write {} to disk", path.display()))?;
        }
    }
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    // Some systems cannot open a directory for syncing; the renames are
    // then as durable as that system makes them.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
}

/// Swaps two directories in one step. False where the system cannot (then
/// nothing moved).
#[cfg(target_os = "linux")]
fn exchange_dirs(a: &Path, b: &Path) -> Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e)
            if [
                rustix::io::Errno::INVAL,
                rustix::io::Errno::NOSYS,
                rustix::io::Errno::BUSY,
                rustix::io::Errno::NOTSUP,
            ]
            .contains(&e) =>
        {
            Ok(false)
        }
        Err(e) => Err(io::Error::from(e))
            .with_context(|| format!("cannot exchange {} with {}", a.display(), b.display())),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange_dirs(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn run(out: &Path, files: &[(&str, &str)]) -> Result<()> {
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        let set = OutputSet::begin(out, &names, &[], &[])?;
        for (name, text) in files {
            write(&set.dir().join(name), text);
        }
        set.switch()
    }

    #[test]
    fn a_new_set_replaces_the_old_one_whole_and_keeps_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("summary.json", "1"), ("report.md", "1")]).unwrap();
        write(&out.join("NOTES.txt"), "mine");
        run(&out, &[("summary.json", "2")]).unwrap();
        assert_eq!(read(&out.join("summary.json")), "2");
        assert!(
            !out.join("report.md").exists(),
            "an output of the old run stayed"
        );
        assert_eq!(read(&out.join("NOTES.txt")), "mine");
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "out")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn an_abandoned_set_leaves_out_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("summary.json", "1")]).unwrap();
        {
            let set = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap();
            write(&set.dir().join("summary.json"), "2");
        }
        assert_eq!(read(&out.join("summary.json")), "1");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "out alone");
    }

    #[test]
    fn a_second_run_is_refused_naming_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap();
        let refused = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap_err();
        let text = format!("{refused:#}");
        assert!(
            first.dir().exists(),
            "the refused run removed the first's staging"
        );
        assert!(text.contains("another faultline run"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap();
    }

    #[test]
    fn a_dead_runs_staging_is_removed_and_its_journal_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("summary.json", "1"), ("report.md", "1")]).unwrap();
        // A run killed before its switch, and one killed inside a
        // file-by-file switch (report.md moved, summary.json not yet).
        let dead = tmp.path().join(".out.faultline-999999999");
        fs::create_dir(&dead).unwrap();
        write(&dead.join("summary.json"), "dead");
        let half = tmp.path().join(".out.faultline-999999998");
        fs::create_dir(&half).unwrap();
        write(&half.join("summary.json"), "3");
        write(&out.join("report.md"), "3");
        write(&out.join(JOURNAL), &format!("{}\n", half.display()));

        let set = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap();
        assert_eq!(
            read(&out.join("summary.json")),
            "3",
            "the switch was finished"
        );
        assert!(!out.join(JOURNAL).exists());
        assert!(!dead.exists() && !half.exists());
        drop(set);
    }

    #[test]
    fn the_working_directory_is_switched_file_by_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("summary.json", "1"), ("report.md", "1")]).unwrap();
        write(&out.join("NOTES.txt"), "mine");
        let set = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap();
        write(&set.dir().join("summary.json"), "2");
        // As holds_working_directory sees it when `--out .`:
        set.switch_file_by_file().unwrap();
        assert_eq!(read(&out.join("summary.json")), "2");
        assert!(!out.join("report.md").exists());
        assert_eq!(read(&out.join("NOTES.txt")), "mine");
        assert!(!out.join(JOURNAL).exists());
    }

    #[test]
    fn a_mount_point_is_staged_inside_and_switched_file_by_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("summary.json", "1"), ("report.md", "1")]).unwrap();
        write(&out.join("NOTES.txt"), "mine");
        let set = OutputSet::begin_staged(&out, &["summary.json"], &[], &[], Some(true)).unwrap();
        assert!(set.dir().starts_with(&out));
        assert!(set.owns(set.dir()));
        let refused = OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap_err();
        let text = format!("{refused:#}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        write(&set.dir().join("summary.json"), "2");
        set.switch().unwrap();
        assert_eq!(read(&out.join("summary.json")), "2");
        assert!(!out.join("report.md").exists());
        assert_eq!(read(&out.join("NOTES.txt")), "mine");
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A dead run's inside staging goes with the next run.
        fs::create_dir(out.join(".faultline-999999999")).unwrap();
        drop(OutputSet::begin(&out, &["summary.json"], &[], &[]).unwrap());
        assert!(!out.join(".faultline-999999999").exists());
    }

    #[test]
    fn inputs_in_out_are_kept_and_own_files_are_never_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        run(&out, &[("records.parquet", "rows"), ("summary.json", "1")]).unwrap();
        let records = out.join("records.parquet");
        let set =
            OutputSet::begin(&out, &["summary.json"], &[], std::slice::from_ref(&records)).unwrap();
        assert!(set.owns(&records));
        assert!(set.owns(set.dir()));
        assert!(!set.owns(tmp.path()));
        write(&set.dir().join("summary.json"), "2");
        set.switch().unwrap();
        assert_eq!(read(&records), "rows");
    }
}
