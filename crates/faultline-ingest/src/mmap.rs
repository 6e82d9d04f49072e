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
/// `copytruncate`) must be read with buffered I/O instead: the ingester maps
/// only files unmodified for [`crate::LIVE_AGE`], and `--no-mmap` maps none.
/// After reading, the caller compares the file's size with the size it mapped
/// and reports a change.
///
/// Pages already read are handed back to the kernel as reading goes on
/// ([`Mapped::release`]), so the process's resident memory stays near one
/// window of chunks however large the file is.
#[derive(Debug)]
pub(crate) struct Mapped {
    map: memmap2::Mmap,
    /// Bytes from the start already released.
    released: std::cell::Cell<usize>,
}

/// Release granularity: a multiple of every page size in use.
const RELEASE_STEP: usize = 2 << 20;

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
        Ok(Mapped {
            map,
            released: std::cell::Cell::new(0),
        })
    }

    /// Tells the kernel the bytes before `end` will not be read again, so it
    /// can drop their pages from this process (they stay in the page cache).
    pub(crate) fn release(&self, end: usize) {
        let end = end.min(self.map.len()) / RELEASE_STEP * RELEASE_STEP;
        let start = self.released.get();
        if end <= start {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: the map is a read-only shared map of a file. Dropping
            // its pages loses nothing: touching them again reads them back
            // from the file, the same bytes under the contract above. No
            // reference into the released range is used after this call
            // (records own their text), and the range lies inside the map.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
        self.released.set(end);
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
