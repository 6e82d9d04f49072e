//! The driver: inputs -> bytes -> chunks at newlines -> parallel parse -> ordered batches.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use crate::error::Error;
use crate::input::Input;
use crate::mmap::Mapped;
use crate::normalize::{normalize_line, Ctx, Origin};
use crate::quarantine::{excerpt, BadLine, Reason};
use crate::record::{Format, Record};
use crate::secret::{Fingerprinter, DEFAULT_FINGERPRINT_KEY};
use crate::text::Shared;

/// How ingest reads and parses. Shared by the CLI flags and the config file.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Worker threads for parsing; 0 means one per core.
    pub threads: usize,
    /// Target chunk size in bytes; chunks end at a newline, so a chunk holding
    /// a longer line grows to fit it.
    pub chunk_bytes: usize,
    /// Lines longer than this are quarantined as `line_too_long` without being parsed.
    pub max_line_bytes: usize,
    /// Memory-map plain files (buffered reads when false).
    pub mmap: bool,
    /// The secret that keys API-key fingerprints.
    pub fingerprint_key: String,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            threads: 0,
            chunk_bytes: 4 << 20,
            max_line_bytes: 16 << 20,
            mmap: true,
            fingerprint_key: DEFAULT_FINGERPRINT_KEY.to_owned(),
        }
    }
}

/// The compression of an input, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Compression {
    /// Detects gzip (`1f 8b`) and zstd (`28 b5 2f fd`) by magic bytes.
    #[must_use]
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The stable name used in outputs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Files modified less than this long ago are read with buffered I/O, never
/// memory-mapped: they may still be written to, and a writer truncating a
/// mapped file (log rotation with `copytruncate`) would kill the process with
/// SIGBUS. A buffered read of a file that shrinks or grows just sees less or
/// more, and the change is reported ([`Error::Changed`]).
pub const LIVE_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// Line and record counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Lines seen, blank ones included.
    pub lines: u64,
    /// Lines holding only whitespace; skipped, not quarantined.
    pub blank_lines: u64,
    /// Records produced (an OTLP export line may hold several).
    pub records: u64,
    /// Lines quarantined.
    pub bad_lines: u64,
    /// Quarantined lines by reason.
    pub bad_by_reason: BTreeMap<Reason, u64>,
    /// Records by detected format.
    pub records_by_format: BTreeMap<Format, u64>,
    /// Lines with plaintext key-shaped strings in them.
    pub lines_with_secrets: u64,
    /// HTTP client spans under a GenAI span (an SDK's request for a call):
    /// read into their call's record, no records of their own.
    pub child_spans: u64,
    /// Of those, the ones whose call was not found near them (in the same
    /// few MiB of input): their status is not on any record.
    pub child_spans_unjoined: u64,
    /// GenAI spans of a call that another instrumentation's span recorded
    /// too (the Anthropic SDK's own span beside OpenLLMetry's): merged into
    /// that call's record.
    pub duplicate_spans: u64,
}

impl Counts {
    /// Adds `other` into `self` (to total several inputs).
    pub fn add(&mut self, other: &Counts) {
        self.bytes += other.bytes;
        self.lines += other.lines;
        self.blank_lines += other.blank_lines;
        self.records += other.records;
        self.bad_lines += other.bad_lines;
        self.lines_with_secrets += other.lines_with_secrets;
        self.child_spans += other.child_spans;
        self.child_spans_unjoined += other.child_spans_unjoined;
        self.duplicate_spans += other.duplicate_spans;
        for (reason, n) in &other.bad_by_reason {
            *self.bad_by_reason.entry(*reason).or_default() += n;
        }
        for (format, n) in &other.records_by_format {
            *self.records_by_format.entry(*format).or_default() += n;
        }
    }
}

/// What became of one input.
#[derive(Debug)]
pub struct FileSummary {
    /// The input's name (`-` for stdin).
    pub name: String,
    /// Its compression.
    pub compression: Compression,
    /// Whether it was memory-mapped.
    pub mapped: bool,
    /// Its counts.
    pub counts: Counts,
    /// Why it stopped early, if it did.
    pub error: Option<Error>,
}

/// What became of a whole run.
#[derive(Debug, Default)]
pub struct Summary {
    /// One entry per input that was opened, in input order.
    pub files: Vec<FileSummary>,
    /// Totals over all files.
    pub totals: Counts,
}

impl Summary {
    /// Why inputs stopped early (or could not be opened), in input order.
    pub fn errors(&self) -> impl Iterator<Item = &Error> {
        self.files.iter().filter_map(|f| f.error.as_ref())
    }
}

/// Records and bad lines of one chunk, in input order.
#[derive(Debug, Default)]
pub struct Batch {
    /// Normalized records.
    pub records: Vec<Record>,
    /// Quarantined lines.
    pub bad_lines: Vec<BadLine>,
}

/// Work done on each batch on the worker threads, in parallel, before the
/// results are handed back in input order: classification, per-minute
/// counters, anything that is a pure function of one batch.
///
/// Line numbers are counted by the workers, each from the start of its own
/// piece of the input: the batch a stage processes numbers its lines from 1
/// (byte offsets are final). Before an output is handed over, in input
/// order, [`Stage::rebase`] adds the lines of the input that came before it.
/// Counting on the calling thread instead would read every byte one more
/// time, ahead of the workers.
pub trait Stage: Sync {
    /// What the stage makes of one batch.
    type Output: Send;

    /// Processes one batch (line numbers relative to its piece).
    fn process(&self, batch: Batch) -> Self::Output;

    /// Adds `lines` to every line number `output` holds.
    fn rebase(&self, output: &mut Self::Output, lines: u64);
}

/// The stage that hands batches back as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Stage for Identity {
    type Output = Batch;

    fn process(&self, batch: Batch) -> Batch {
        batch
    }

    fn rebase(&self, batch: &mut Batch, lines: u64) {
        batch.rebase(lines);
    }
}

impl Batch {
    /// Adds `lines` to the line number of every record and bad line.
    pub fn rebase(&mut self, lines: u64) {
        for record in &mut self.records {
            record.source_line += lines;
        }
        for bad in &mut self.bad_lines {
            bad.line += lines;
        }
    }
}

/// Turns inputs into ordered [`Batch`]es of records.
#[derive(Debug)]
pub struct Ingester {
    options: IngestOptions,
    fingerprinter: Fingerprinter,
    pool: rayon::ThreadPool,
}

/// A piece of input handed to a worker.
enum Piece<D> {
    /// Whole lines (the last may lack its newline only at the end of input).
    Lines { data: D, offset: u64, last: bool },
    /// A line over the size limit, already skipped; only its start is kept.
    Overlong {
        offset: u64,
        len: u64,
        head: Vec<u8>,
    },
}

/// A parsed piece: its records and bad lines, and its counts.
struct ChunkOut {
    batch: Batch,
    counts: Counts,
    /// Records by format (in [`Format::ALL`]'s order), folded into
    /// `counts.records_by_format` when the piece is done: a map entry per
    /// record cost more than the rest of the line's bookkeeping.
    by_format: [u64; Format::ALL.len()],
}

impl Ingester {
    /// An ingester with its own worker pool.
    pub fn new(options: IngestOptions) -> Result<Ingester, Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|i| format!("faultline-ingest-{i}"))
            .build()
            .map_err(|e| Error::Threads {
                threads: options.threads,
                reason: e.to_string(),
            })?;
        let fingerprinter = Fingerprinter::new(&options.fingerprint_key);
        Ok(Ingester {
            options,
            fingerprinter,
            pool,
        })
    }

    /// Worker threads in use.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Reads every input in order, calling `on_batch` with each chunk's records
    /// in input order. An input that fails stops alone: its error is kept in
    /// its [`FileSummary`] and the others are still read.
    pub fn ingest(&self, inputs: &[Input], on_batch: &mut dyn FnMut(Batch)) -> Summary {
        self.ingest_staged(inputs, &Identity, on_batch)
    }

    /// Like [`Ingester::ingest`], but runs `stage` on each batch on the worker
    /// threads (in parallel, with line numbers already final) and hands its
    /// outputs to `on_output` in input order.
    pub fn ingest_staged<S: Stage>(
        &self,
        inputs: &[Input],
        stage: &S,
        on_output: &mut dyn FnMut(S::Output),
    ) -> Summary {
        let mut summary = Summary::default();
        for input in inputs {
            let file = self.ingest_input(input, stage, on_output);
            summary.totals.add(&file.counts);
            summary.files.push(file);
        }
        summary
    }

    fn ingest_input<S: Stage>(
        &self,
        input: &Input,
        stage: &S,
        on_batch: &mut dyn FnMut(S::Output),
    ) -> FileSummary {
        let name = input.name();
        match input {
            Input::Stdin => {
                let stdin = io::stdin();
                let mut lock = stdin.lock();
                let mut head = [0u8; 4];
                let filled = read_head(&mut lock, &mut head);
                match filled {
                    Ok(n) => {
                        let chained = io::Read::chain(&head[..n], lock);
                        self.stream_staged(
                            &name,
                            chained,
                            Compression::detect(&head[..n]),
                            stage,
                            on_batch,
                        )
                    }
                    Err(source) => failed(&name, PathBuf::from("-"), source),
                }
            }
            Input::File(path) => self.ingest_file(&name, path, stage, on_batch),
        }
    }

    fn ingest_file<S: Stage>(
        &self,
        name: &str,
        path: &PathBuf,
        stage: &S,
        on_batch: &mut dyn FnMut(S::Output),
    ) -> FileSummary {
        // The head is read to tell the compression; a regular file is then
        // read from its start again, anything else (a FIFO, `<(cmd)`,
        // `/dev/stdin`) cannot seek, and gets its head back in front.
        let open = || -> io::Result<(File, std::fs::Metadata, [u8; 4], usize)> {
            let mut file = File::open(path)?;
            let meta = file.metadata()?;
            let mut head = [0u8; 4];
            let n = read_head(&mut file, &mut head)?;
            if meta.is_file() {
                file.rewind()?;
            }
            Ok((file, meta, head, n))
        };
        let (file, meta, head, n) = match open() {
            Ok(opened) => opened,
            Err(source) => return failed(name, path.clone(), source),
        };
        let compression = Compression::detect(&head[..n]);
        if !meta.is_file() {
            let reader = io::Read::chain(&head[..n], file);
            let mut summary = self.stream_staged(name, reader, compression, stage, on_batch);
            if let Some(Error::Read { path: p, .. }) = &mut summary.error {
                p.clone_from(path);
            }
            return summary;
        }
        let len = meta.len();
        // A file written to a moment ago may still be live: a writer could
        // truncate it (log rotation with copytruncate) while it is mapped,
        // and reading a page past the new end kills the process (SIGBUS).
        // Such files are read with buffered I/O, which sees a short read.
        let live = meta
            .modified()
            .ok()
            .is_none_or(|at| at.elapsed().map_or(true, |age| age < LIVE_AGE));
        // The size is asked again of the open file, not of its path: a file
        // renamed away by a rotation is still read whole, and has not changed.
        let handle = file.try_clone().ok();
        if compression == Compression::None && self.options.mmap && len > 0 && !live {
            // A file that cannot be mapped (special files, some network file
            // systems) is read the ordinary way below.
            if let Ok(map) = Mapped::open(&file) {
                let mut summary = self.bytes_staged(name, &map, stage, on_batch, Some(&map));
                summary.mapped = true;
                // Shrunk and grown again to the same size still changed.
                return changed_size(summary, handle.as_ref(), path, len, map.shrank());
            }
        }
        let mut summary = self.stream_staged(name, file, compression, stage, on_batch);
        if let Some(Error::Read { path: p, .. }) = &mut summary.error {
            p.clone_from(path);
        }
        if compression == Compression::None {
            return changed_size(summary, handle.as_ref(), path, len, false);
        }
        summary
    }

    /// Ingests bytes already in memory (a mapped file, an embedded sample).
    pub fn ingest_bytes(
        &self,
        name: &str,
        data: &[u8],
        on_batch: &mut dyn FnMut(Batch),
    ) -> FileSummary {
        self.ingest_bytes_staged(name, data, &Identity, on_batch)
    }

    /// [`Ingester::ingest_bytes`] with a [`Stage`] run on the workers.
    pub fn ingest_bytes_staged<S: Stage>(
        &self,
        name: &str,
        data: &[u8],
        stage: &S,
        on_batch: &mut dyn FnMut(S::Output),
    ) -> FileSummary {
        self.bytes_staged(name, data, stage, on_batch, None)
    }

    /// [`Ingester::ingest_bytes_staged`]; `data` is `map`'s bytes when the
    /// file is mapped: its pages are released as reading goes on, and no
    /// piece is cut after the file shrank under it.
    ///
    /// A piece is about `chunk_bytes` of whole lines; a line that runs past
    /// `chunk_bytes + max_line_bytes` is skipped as one over-long bad line
    /// without being held (a 50 GB file with no newline costs a scan, not
    /// memory).
    fn bytes_staged<S: Stage>(
        &self,
        name: &str,
        data: &[u8],
        stage: &S,
        on_batch: &mut dyn FnMut(S::Output),
        map: Option<&Mapped>,
    ) -> FileSummary {
        let file: Arc<str> = Arc::from(name);
        let chunk = self.options.chunk_bytes.max(1);
        let max_line = self.options.max_line_bytes.max(1);
        let mut start = 0;
        let next_piece = || {
            if start >= data.len() || map.is_some_and(Mapped::shrank) {
                return None;
            }
            let target = start + chunk;
            let end = if target >= data.len() {
                data.len()
            } else {
                let reach_end = data.len().min(target + max_line + 1);
                match memchr::memchr(b'\n', &data[target..reach_end]) {
                    Some(i) => target + i + 1,
                    // The last line, unterminated and within bounds.
                    None if reach_end == data.len() => data.len(),
                    None => {
                        if let Some(i) = memchr::memrchr(b'\n', &data[start..target]) {
                            start + i + 1
                        } else {
                            // The line at `start` runs past every bound.
                            let (len, head) = skip_overlong(data, start, map);
                            let piece = Piece::Overlong {
                                offset: start as u64,
                                len: len as u64,
                                head,
                            };
                            start += len;
                            return Some(piece);
                        }
                    }
                }
            };
            let piece = Piece::Lines {
                data: &data[start..end],
                offset: start as u64,
                last: end == data.len(),
            };
            start = end;
            Some(piece)
        };
        let mut counts = Counts::default();
        self.run(
            &file,
            next_piece,
            map.is_some(),
            stage,
            on_batch,
            &mut counts,
            &mut |end| {
                if let Some(map) = map {
                    map.release(end as usize);
                }
            },
        );
        FileSummary {
            name: name.to_owned(),
            compression: Compression::None,
            mapped: false,
            counts,
            error: None,
        }
    }

    /// Ingests a stream (stdin, a pipe, a compressed file, or a plain file
    /// read without mmap), decompressing as it goes.
    pub fn ingest_stream<R: Read>(
        &self,
        name: &str,
        reader: R,
        compression: Compression,
        on_batch: &mut dyn FnMut(Batch),
    ) -> FileSummary {
        self.stream_staged(name, reader, compression, &Identity, on_batch)
    }

    fn stream_staged<R: Read, S: Stage>(
        &self,
        name: &str,
        reader: R,
        compression: Compression,
        stage: &S,
        on_batch: &mut dyn FnMut(S::Output),
    ) -> FileSummary {
        let reader: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
                reader,
            ))),
            Compression::Zstd => match zstd::stream::read::Decoder::new(reader) {
                Ok(decoder) => Box::new(decoder),
                Err(source) => {
                    let mut summary = failed(name, PathBuf::from(name), source);
                    summary.compression = compression;
                    return summary;
                }
            },
        };
        let file: Arc<str> = Arc::from(name);
        let mut chunker = StreamChunker::new(
            reader,
            self.options.chunk_bytes.max(1),
            self.options.max_line_bytes,
        );
        let mut error = None;
        let next_piece = || {
            if error.is_some() {
                return None;
            }
            match chunker.next_piece() {
                Ok(piece) => piece,
                Err(source) => {
                    // Keep what was read; the failure is reported after it.
                    error = Some(source);
                    chunker.rest()
                }
            }
        };
        let mut counts = Counts::default();
        self.run(
            &file,
            next_piece,
            false,
            stage,
            on_batch,
            &mut counts,
            &mut |_| {},
        );
        let error = error.map(|source| Error::Read {
            path: PathBuf::from(name),
            last_good_line: counts.lines,
            offset: counts.bytes,
            source,
        });
        FileSummary {
            name: name.to_owned(),
            compression,
            mapped: false,
            counts,
            error,
        }
    }

    /// Pieces in flight at once: enough to keep every worker busy while the
    /// caller's thread waits for the next piece in order; few enough to bound
    /// memory (each holds a chunk and its records).
    fn window(&self) -> usize {
        self.threads().max(1) * 4
    }

    /// Parses and stages the pieces that `next_piece` cuts, on the pool, and
    /// hands the outputs to `on_output` in input order, adding each piece's
    /// counts to `counts` and telling `consumed` where it ended.
    ///
    /// A pipeline, not rounds: a worker that finishes a piece takes the next
    /// one while earlier pieces are still being handed over, so no worker
    /// waits for the slowest piece of a round, nor for the caller's thread.
    /// Each worker numbers the lines of its piece from 1; the outputs are
    /// rebased here, in order, by the lines of the pieces before.
    ///
    /// The pieces of a `volatile` input (a mapped file, which another
    /// process may truncate or rewrite while it is read) are copied before
    /// they are parsed: the parser and its regexes read a line more than
    /// once and rely on reading the same bytes each time.
    #[allow(clippy::too_many_arguments)]
    fn run<D: AsRef<[u8]> + Send, S: Stage>(
        &self,
        file: &Arc<str>,
        mut next_piece: impl FnMut() -> Option<Piece<D>>,
        volatile: bool,
        stage: &S,
        on_output: &mut dyn FnMut(S::Output),
        counts: &mut Counts,
        consumed: &mut dyn FnMut(u64),
    ) {
        type Done<O> = (usize, u64, std::thread::Result<(Counts, Option<O>)>);
        let window = self.window();
        let max_line = self.options.max_line_bytes;
        let fingerprinter = &self.fingerprinter;
        self.pool.in_place_scope(|scope| {
            let (done, finished) = mpsc::channel::<Done<S::Output>>();
            let mut ready = BTreeMap::new();
            let (mut submitted, mut handed) = (0usize, 0usize);
            let mut more = true;
            loop {
                while more && submitted - handed < window {
                    let Some(piece) = next_piece() else {
                        more = false;
                        break;
                    };
                    let (seq, done) = (submitted, done.clone());
                    scope.spawn(move |_| {
                        let end = piece.end();
                        let work = || {
                            let out = if volatile {
                                piece.stable(|piece| {
                                    parse_piece(piece, file, max_line, fingerprinter)
                                })
                            } else {
                                parse_piece(&piece, file, max_line, fingerprinter)
                            };
                            let empty =
                                out.batch.records.is_empty() && out.batch.bad_lines.is_empty();
                            (out.counts, (!empty).then(|| stage.process(out.batch)))
                        };
                        // A panic is a bug; it is raised again on the caller's thread
                        // rather than leaving it waiting for this piece forever.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                        // The receiver outlives every task of the scope.
                        let _ = done.send((seq, end, result));
                    });
                    submitted += 1;
                }
                if handed == submitted {
                    break;
                }
                let Ok((seq, end, result)) = finished.recv() else {
                    break;
                };
                ready.insert(seq, (end, result));
                while let Some((end, result)) = ready.remove(&handed) {
                    handed += 1;
                    match result {
                        Ok((piece_counts, output)) => {
                            let lines_before = counts.lines;
                            counts.add(&piece_counts);
                            if let Some(mut output) = output {
                                stage.rebase(&mut output, lines_before);
                                on_output(output);
                            }
                            consumed(end);
                        }
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
            }
        });
    }
}

impl<D: AsRef<[u8]>> Piece<D> {
    /// Calls `parse` with the piece's lines copied into this thread's
    /// buffer, which no other process can change (the copy reads each byte
    /// once). The buffer is kept for the thread's next piece.
    fn stable<T>(&self, parse: impl FnOnce(&Piece<&[u8]>) -> T) -> T {
        thread_local! {
            static COPY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        match self {
            Piece::Lines { data, offset, last } => COPY.with_borrow_mut(|copy| {
                copy.clear();
                copy.extend_from_slice(data.as_ref());
                parse(&Piece::Lines {
                    data: copy.as_slice(),
                    offset: *offset,
                    last: *last,
                })
            }),
            Piece::Overlong { offset, len, head } => parse(&Piece::Overlong {
                offset: *offset,
                len: *len,
                head: head.clone(),
            }),
        }
    }

    /// The input offset just past the piece.
    fn end(&self) -> u64 {
        match self {
            Piece::Lines { data, offset, .. } => offset + data.as_ref().len() as u64,
            Piece::Overlong { offset, len, .. } => offset + len,
        }
    }
}

/// The length of the over-long line at `start` (through its newline, or to
/// the end of `data`) and its first bytes. A mapped line's pages are handed
/// back as the scan passes them.
fn skip_overlong(data: &[u8], start: usize, map: Option<&Mapped>) -> (usize, Vec<u8>) {
    const STEP: usize = 64 << 20;
    let head = data[start..data.len().min(start + crate::quarantine::EXCERPT_BYTES)].to_vec();
    let mut at = start;
    loop {
        let end = data.len().min(at + STEP);
        if let Some(i) = memchr::memchr(b'\n', &data[at..end]) {
            return (at + i + 1 - start, head);
        }
        if let Some(map) = map {
            map.release_range(at, end);
        }
        at = end;
        if at == data.len() || map.is_some_and(Mapped::shrank) {
            return (at - start, head);
        }
    }
}

/// Reports a plain file whose size moved while it was read, or that is known
/// to have `shrunk` under its map (an error of its own takes precedence),
/// asking the open file (`handle`) when there is one.
fn changed_size(
    mut summary: FileSummary,
    handle: Option<&File>,
    path: &Path,
    before: u64,
    shrunk: bool,
) -> FileSummary {
    let after = match handle {
        Some(file) => file.metadata().map_or(before, |m| m.len()),
        None => std::fs::metadata(path).map_or(before, |m| m.len()),
    };
    if (after != before || shrunk) && summary.error.is_none() {
        summary.error = Some(Error::Changed {
            path: path.to_path_buf(),
            before,
            after,
        });
    }
    summary
}

fn failed(name: &str, path: PathBuf, source: io::Error) -> FileSummary {
    FileSummary {
        name: name.to_owned(),
        compression: Compression::None,
        mapped: false,
        counts: Counts::default(),
        error: Some(Error::Open { path, source }),
    }
}

fn read_head(reader: &mut impl Read, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Parses the lines of one piece, numbering them from 1 (see [`Stage`]).
fn parse_piece<D: AsRef<[u8]>>(
    piece: &Piece<D>,
    file: &Arc<str>,
    max_line: usize,
    fingerprinter: &Fingerprinter,
) -> ChunkOut {
    let ctx = &Ctx::new(fingerprinter);
    // A chunk-local copy of the name for its bad lines (one shared count
    // touched by all workers would bounce between cores), and the name
    // interned for its records, which then hold it without any count.
    let file: &Arc<str> = &Arc::from(&**file);
    let name = &Shared::intern(file);
    let mut out = ChunkOut {
        batch: Batch::default(),
        counts: Counts::default(),
        by_format: [0; Format::ALL.len()],
    };
    match piece {
        Piece::Overlong { offset, len, head } => {
            out.counts.lines = 1;
            out.counts.bytes = *len;
            out.counts.bad_lines = 1;
            *out.counts
                .bad_by_reason
                .entry(Reason::LineTooLong)
                .or_default() += 1;
            out.batch.bad_lines.push(BadLine {
                file: Arc::clone(file),
                line: 1,
                offset: *offset,
                reason: Reason::LineTooLong,
                detail: Some(format!("longer than the {max_line}-byte line limit")),
                excerpt: excerpt(head),
            });
        }
        Piece::Lines { data, offset, last } => {
            let data = data.as_ref();
            out.counts.bytes = data.len() as u64;
            // Log lines of LLM calls run a few hundred bytes: a guess that
            // sizes the record vector for most chunks without a counting pass.
            out.batch.records.reserve(data.len() / 256 + 1);
            let mut start = 0usize;
            let mut line_no = 0u64;
            while start < data.len() {
                let (end, next) = match memchr::memchr(b'\n', &data[start..]) {
                    Some(i) => (start + i, start + i + 1),
                    None => (data.len(), data.len()),
                };
                line_no += 1;
                let unterminated = *last && next == data.len() && end == data.len();
                let mut line = &data[start..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                if *offset == 0 && start == 0 {
                    line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
                }
                let origin = Origin {
                    file,
                    name,
                    line: line_no,
                    offset: offset + start as u64,
                };
                parse_line(line, unterminated, &origin, max_line, ctx, &mut out);
                start = next;
            }
            out.counts.lines = line_no;
        }
    }
    let joined = ctx.spans.take().join(&mut out.batch.records);
    out.counts.child_spans = joined.children;
    out.counts.child_spans_unjoined = joined.unjoined;
    out.counts.duplicate_spans = joined.duplicates;
    out.counts.records -= joined.duplicates;
    out.by_format[Format::OtelGenAi.index()] -= joined.duplicates;
    for (format, n) in Format::ALL.into_iter().zip(out.by_format) {
        if n > 0 {
            out.counts.records_by_format.insert(format, n);
        }
    }
    out
}

fn parse_line(
    line: &[u8],
    unterminated: bool,
    origin: &Origin<'_>,
    max_line: usize,
    ctx: &Ctx<'_>,
    out: &mut ChunkOut,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        out.counts.blank_lines += 1;
        return;
    }
    let result = if line.len() > max_line {
        Err(crate::normalize::Rejection {
            reason: Reason::LineTooLong,
            detail: Some(format!(
                "{} bytes, over the {max_line}-byte line limit",
                line.len()
            )),
        })
    } else {
        let before = out.batch.records.len();
        normalize_line(line, unterminated, origin, ctx, &mut out.batch.records).map(|()| before)
    };
    match result {
        Ok(before) => {
            let new = &out.batch.records[before..];
            out.counts.records += new.len() as u64;
            if new.first().is_some_and(|r| r.secrets_found > 0) {
                out.counts.lines_with_secrets += 1;
            }
            for rec in new {
                if let Some(format) = rec.format {
                    out.by_format[format.index()] += 1;
                }
            }
        }
        Err(rejection) => {
            out.counts.bad_lines += 1;
            *out.counts
                .bad_by_reason
                .entry(rejection.reason)
                .or_default() += 1;
            if crate::secret::count_secrets(line) > 0 {
                out.counts.lines_with_secrets += 1;
            }
            out.batch.bad_lines.push(BadLine {
                file: Arc::clone(origin.file),
                line: origin.line,
                offset: origin.offset,
                reason: rejection.reason,
                detail: rejection
                    .detail
                    .map(|d| crate::secret::redact(&d).into_owned()),
                excerpt: excerpt(line),
            });
        }
    }
}

/// Cuts a byte stream into pieces of whole lines.
struct StreamChunker<R> {
    reader: R,
    chunk: usize,
    max_line: usize,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> StreamChunker<R> {
    fn new(reader: R, chunk: usize, max_line: usize) -> Self {
        StreamChunker {
            reader,
            chunk,
            max_line,
            buf: Vec::new(),
            offset: 0,
            eof: false,
        }
    }

    /// Reads until `buf` holds at least `want` bytes or the stream ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.buf.capacity() < want {
            self.buf.reserve(want - self.buf.len());
        }
        let mut scratch = vec![0u8; (want.saturating_sub(self.buf.len())).clamp(1, 1 << 20)];
        while !self.eof && self.buf.len() < want {
            let room = (want - self.buf.len()).min(scratch.len());
            match self.reader.read(&mut scratch[..room]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn take(&mut self, len: usize, last: bool) -> Piece<Vec<u8>> {
        let rest = self.buf.split_off(len);
        let data = std::mem::replace(&mut self.buf, rest);
        let offset = self.offset;
        self.offset += len as u64;
        Piece::Lines { data, offset, last }
    }

    fn next_piece(&mut self) -> io::Result<Option<Piece<Vec<u8>>>> {
        let mut want = self.chunk.max(self.buf.len() + 1);
        loop {
            self.fill(want)?;
            if self.buf.is_empty() {
                return Ok(None);
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.buf) {
                return Ok(Some(self.take(i + 1, false)));
            }
            if self.eof {
                return Ok(Some(self.take(self.buf.len(), true)));
            }
            if self.buf.len() > self.max_line {
                return self.skip_overlong().map(Some);
            }
            // One line longer than the buffer: read more of it.
            want = (self.buf.len() * 2).min(self.max_line + 1);
        }
    }

    /// Drops an over-long line up to and including its newline.
    fn skip_overlong(&mut self) -> io::Result<Piece<Vec<u8>>> {
        let offset = self.offset;
        let head = self.buf[..crate::quarantine::EXCERPT_BYTES.min(self.buf.len())].to_vec();
        let mut skipped = self.buf.len() as u64;
        self.buf.clear();
        loop {
            self.fill(self.chunk)?;
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                skipped += i as u64 + 1;
                self.buf.drain(..=i);
                break;
            }
            skipped += self.buf.len() as u64;
            self.buf.clear();
            if self.eof {
                break;
            }
        }
        self.offset += skipped;
        Ok(Piece::Overlong {
            offset,
            len: skipped,
            head,
        })
    }

    /// After a read error: what is left in the buffer, as the input's last piece.
    fn rest(&mut self) -> Option<Piece<Vec<u8>>> {
        (!self.buf.is_empty()).then(|| self.take(self.buf.len(), true))
    }
}
