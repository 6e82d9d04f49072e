//! The one place faultline maps files into memory.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;

/// A read-only memory map of a whole file.
///
/// # A file that shrinks while mapped
///
/// Reading a page past a new, shorter end of a mapped file makes the kernel
/// raise `SIGBUS`, which would kill the process: log rotation with
/// `copytruncate` does exactly that to a file being read. On Linux each map
/// is registered with a `SIGBUS` handler ([`fault`]) that, for a fault inside
/// a registered map, puts zero-filled memory over the rest of the map and
/// notes the fault: reading goes on over zeros, the reader stops cutting
/// pieces at the next one ([`Mapped::shrank`]), and the caller reports the
/// file as changed with the records read before. Faults outside every map
/// go to the handler that was there before (Rust's stack-overflow report,
/// or the default action). Elsewhere, and when no handler slot is free,
/// [`Mapped::open`] fails and the caller reads the file with buffered I/O.
///
/// Log files that are only appended to need none of this: the map keeps the
/// size it was created with and later appends are simply not seen. The
/// ingester maps only files unmodified for [`crate::LIVE_AGE`], and
/// `--no-mmap` maps none. After reading, the caller compares the file's size
/// with the size it mapped and reports a change.
///
/// Pages already read are handed back to the kernel as reading goes on
/// ([`Mapped::release`]), so the process's resident memory stays near one
/// window of chunks however large the file is.
#[derive(Debug)]
pub(crate) struct Mapped {
    map: memmap2::Mmap,
    /// The map's slot in the fault handler's registry.
    guard: fault::Guard,
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
        // met by the fault guard registered next (see above): where it cannot
        // be registered, the map is dropped before any byte of it is read.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        let guard = fault::Guard::register(map.as_ptr() as usize, map.len())?;
        #[cfg(unix)]
        {
            // Sequential scan: let the kernel read ahead aggressively. Advice
            // is a hint; failing to give it changes nothing.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(Mapped {
            map,
            guard,
            released: std::cell::Cell::new(0),
        })
    }

    /// Whether the file shrank under the map: the bytes from the first page
    /// past its new end read as zeros.
    pub(crate) fn shrank(&self) -> bool {
        self.guard.faulted()
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

impl Mapped {
    /// Hands back the pages wholly inside `from..to`, bytes of an over-long
    /// line being skipped that no piece holds.
    pub(crate) fn release_range(&self, from: usize, to: usize) {
        let from = from.div_ceil(RELEASE_STEP) * RELEASE_STEP;
        let to = to.min(self.map.len()) / RELEASE_STEP * RELEASE_STEP;
        if to <= from {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: as in `release`: a read-only file map whose dropped
            // pages read back as the same bytes; no piece refers to them.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

/// The `SIGBUS` handler that keeps a shrinking mapped file from killing the
/// process (see [`Mapped`]).
#[cfg(target_os = "linux")]
mod fault {
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Maps registered at once. The ingester maps one file at a time; a
    /// library user mapping more in parallel gets buffered reads beyond this.
    const SLOTS: usize = 32;

    struct Slot {
        used: AtomicBool,
        /// `usize::MAX` while the slot is free or being filled: matches nothing.
        start: AtomicUsize,
        end: AtomicUsize,
        faulted: AtomicBool,
    }

    static MAPS: [Slot; SLOTS] = [const {
        Slot {
            used: AtomicBool::new(false),
            start: AtomicUsize::new(usize::MAX),
            end: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
        }
    }; SLOTS];

    /// The page size, and the `SIGBUS` action found when the handler was
    /// installed (for faults that are not in a map).
    static INSTALLED: OnceLock<io::Result<(usize, libc::sigaction)>> = OnceLock::new();

    /// A map's registration; removed on drop, before the map is unmapped.
    #[derive(Debug)]
    pub(super) struct Guard {
        slot: usize,
    }

    impl Guard {
        pub(super) fn register(start: usize, len: usize) -> io::Result<Guard> {
            let page = match INSTALLED.get_or_init(install) {
                Ok((page, _)) => *page,
                Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
            };
            for (i, slot) in MAPS.iter().enumerate() {
                if slot
                    .used
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    slot.faulted.store(false, Ordering::Relaxed);
                    slot.end
                        .store(start + len.div_ceil(page) * page, Ordering::Release);
                    slot.start.store(start, Ordering::Release);
                    return Ok(Guard { slot: i });
                }
            }
            Err(io::Error::other("every mapped-file fault slot is in use"))
        }

        pub(super) fn faulted(&self) -> bool {
            MAPS[self.slot].faulted.load(Ordering::Acquire)
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let slot = &MAPS[self.slot];
            slot.start.store(usize::MAX, Ordering::Release);
            slot.end.store(0, Ordering::Release);
            slot.used.store(false, Ordering::Release);
        }
    }

    fn install() -> io::Result<(usize, libc::sigaction)> {
        // SAFETY: sysconf and sigaction are called with valid arguments; the
        // handler installed is async-signal-safe (atomics, mmap, sigaction).
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
            let mut previous: libc::sigaction = std::mem::zeroed();
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&raw mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &raw const action, &raw mut previous) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok((page, previous))
        }
    }

    extern "C" fn on_sigbus(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = match INSTALLED.get() {
            Some(Ok((page, _))) => *page,
            _ => 4096,
        };
        for slot in &MAPS {
            let (start, end) = (
                slot.start.load(Ordering::Acquire),
                slot.end.load(Ordering::Acquire),
            );
            if start <= addr && addr < end {
                let from = addr & !(page - 1);
                // SAFETY: the range lies inside a live read-only map of this
                // process, which nothing writes; anonymous zero pages
                // replace its unreadable rest, and the map's own unmap
                // later removes them with it.
                let zeros = unsafe {
                    libc::mmap(
                        from as *mut libc::c_void,
                        end - from,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if zeros != libc::MAP_FAILED {
                    slot.faulted.store(true, Ordering::Release);
                    return;
                }
            }
        }
        chain(signal, info, context);
    }

    /// A fault outside every map: what was installed before handles it.
    fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
        let previous = match INSTALLED.get() {
            Some(Ok((_, previous))) => *previous,
            _ => return restore_default(signal),
        };
        let handler = previous.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            // Returning re-runs the faulting access, which now meets the
            // default action: the process ends as it would have.
            return restore_default(signal);
        }
        // SAFETY: the previous action was installed by this process with the
        // signature its flags declare.
        unsafe {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                handler(signal, info, context);
            } else {
                let handler: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                handler(signal);
            }
        }
    }

    fn restore_default(signal: libc::c_int) {
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid action.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &raw const action, std::ptr::null_mut());
        }
    }
}

/// Where no handler can keep a shrinking map from killing the process,
/// nothing is mapped: [`Mapped::open`] fails and the file is read with
/// buffered I/O.
#[cfg(not(target_os = "linux"))]
mod fault {
    use std::io;

    #[derive(Debug)]
    pub(super) struct Guard;

    impl Guard {
        pub(super) fn register(_: usize, _: usize) -> io::Result<Guard> {
            Err(io::Error::other(
                "mapped files are read only where a shrinking file cannot kill the process",
            ))
        }

        pub(super) fn faulted(&self) -> bool {
            false
        }
    }
}
