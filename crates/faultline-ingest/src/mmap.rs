//! The one place faultline maps files into memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;

/// A read-only memory map of a whole file.
///
/// # Contract
///
/// The file must not shrink while it is mapped: reading a page past a new,
/// shorter end makes the kernel raise `SIGBUS`, which kills the process. Log
/// files that are only appended to are safe (the map keeps the size it was
/// created with and later appends are simply not seen); a file that may be
/// truncated or rewritten while faultline runs (log rotation with
/// `copytruncate`) must be read with buffered I/O instead (`--no-mmap`).
/// After reading, the caller compares the file's size with the size it mapped
/// and reports a change.
#[derive(Debug)]
pub(crate) struct Mapped {
    map: memmap2::Mmap,
}

impl Mapped {
    /// Maps `file`, which must be a regular, non-empty file.
    pub(crate) fn open(file: &File) -> io::Result<Mapped> {
        // SAFETY: the map is read-only and private to this process. The one
        // hazard, another process truncating the file while it is mapped, is
        // the documented contract above; callers offer buffered reads for
        // inputs where it can happen and report size changes after reading.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        #[cfg(unix)]
        {
            // Sequential scan: let the kernel read ahead aggressively. Advice
            // is a hint; failing to give it changes nothing.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(Mapped { map })
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
