//! Parquet pages records.parquet writes itself rather than through
//! polars-parquet: those of the low-cardinality text columns, encoded
//! straight from the codes the workers wrote; and the compression of every
//! page, with one zstd context per thread, random text at its own level.
//!
//! polars-parquet encodes a dictionary column from an arrow dictionary array:
//! the codes would be copied into a key array (and a validity bitmap), then
//! read again to find the greatest key, zipped with the validity and packed.
//! Here the codes are read twice in all: once to merge the batches' values
//! into the row group's dictionary, once to write the page. The bytes are
//! those polars-parquet writes for the same dictionary array: the same
//! dictionary page, the same run-length/bit-packed keys (its encoder), the
//! same page split and statistics.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use polars::prelude::{PolarsError, PolarsResult};
use polars_arrow::array::Array;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::encoding::hybrid_rle::Encoder;
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{
    CompressedDataPage, CompressedDictPage, DataPage, DataPageHeader, DataPageHeaderV1, DictPage,
    Page,
};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::statistics::{BinaryStatistics, ParquetStatistics};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, compress, CompressedPage, CompressionOptions, Encoding, ParquetType, Version,
    WriteOptions,
};
use zstd::zstd_safe::{self, CCtx, CParameter, ParamSwitch};

use crate::operations::{operation_id, operation_id_into};
use crate::FastHash;

/// zstd's level for random text: negative levels look for matches at
/// fewer positions (random ids have none but their common prefix).
const RANDOM_LEVEL: i32 = -7;

/// Code of a missing value.
pub(crate) const NULL: u32 = u32::MAX;

/// polars-parquet's target size of a data page, before compression.
const PAGE_BYTES: usize = 1024 * 1024;

/// Longest min/max statistic kept for a text column, in bytes (polars'
/// default; longer values are cut at a character boundary, the maximum
/// then raised so that it still bounds the column).
const STATISTIC_BYTES: usize = 64;

/// Compresses a page as polars-parquet's `compress` does, with the same
/// bytes, but with one zstd context per thread kept between pages (where
/// `compress` makes a context, about a megabyte of tables, per page) and
/// into an output buffer it does not zero first.
///
/// `random` marks a page of random text (request ids): it is compressed at
/// a negative level with its literals still Huffman-coded. zstd stores
/// literals raw at negative levels, which leaves random hex half empty; with
/// Huffman codes kept, the page is as small as at level 1 (smaller for ids
/// sharing a prefix, a few percent larger for base62 ids and UUIDs) for a
/// third less time: the match search, not the coding, is what level 1
/// spends its time on.
pub(crate) fn compress_page(
    page: Page,
    compression: CompressionOptions,
    random: bool,
) -> PolarsResult<CompressedPage> {
    thread_local! {
        /// Contexts by level and literal mode.
        static CONTEXTS: RefCell<Vec<((i32, bool), CCtx<'static>)>> = const { RefCell::new(Vec::new()) };
    }
    let level = match (compression, &page) {
        // V2 pages compress their values only: polars-parquet knows how.
        (_, Page::Data(data)) if matches!(data.header(), DataPageHeader::V2(_)) => {
            return Ok(compress(page, Vec::new(), compression)?);
        }
        (CompressionOptions::Zstd(_), _) if random => RANDOM_LEVEL,
        // polars-parquet's level when none is given: zstd's default.
        (CompressionOptions::Zstd(level), _) => level.map_or(0, |l| l.compression_level()),
        _ => return Ok(compress(page, Vec::new(), compression)?),
    };
    let input: &[u8] = match &page {
        Page::Data(data) => data.buffer(),
        Page::Dict(dict) => &dict.buffer,
    };
    let mut output = Vec::with_capacity(zstd_safe::compress_bound(input.len()));
    CONTEXTS.with_borrow_mut(|contexts| {
        let key = (level, random);
        let at = if let Some(at) = contexts.iter().position(|(k, _)| *k == key) {
            at
        } else {
            let mut made = CCtx::create();
            made.set_parameter(CParameter::CompressionLevel(level))
                .map_err(zstd_error)?;
            if random {
                made.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))
                    .map_err(zstd_error)?;
            }
            contexts.push((key, made));
            contexts.len() - 1
        };
        contexts[at]
            .1
            .compress2(&mut output, input)
            .map_err(zstd_error)
    })?;
    let size = input.len();
    Ok(match page {
        Page::Data(data) => {
            let num_rows = data.num_rows().unwrap_or_else(|| data.num_values());
            CompressedPage::Data(CompressedDataPage::new(
                data.header().clone(),
                CowBuffer::Owned(output),
                Compression::Zstd,
                size,
                data.descriptor.clone(),
                num_rows,
            ))
        }
        Page::Dict(dict) => CompressedPage::Dict(CompressedDictPage::new(
            CowBuffer::Owned(output),
            Compression::Zstd,
            size,
            dict.num_values,
            dict.is_sorted,
        )),
    })
}

fn zstd_error(code: usize) -> PolarsError {
    let reason = zstd_safe::get_error_name(code);
    PolarsError::ComputeError(format!("zstd could not compress a page: {reason}").into())
}

/// Rows of a dictionary-coded column from one batch: a code per row into
/// `values`, or [`NULL`].
#[derive(Clone, Copy)]
pub(crate) struct CodedPart<'a> {
    pub(crate) codes: &'a [u32],
    pub(crate) values: &'a [Box<str>],
}

/// The rows of `parts`, in order, as one dictionary-encoded column chunk:
/// a dictionary page whose values are in the order the rows first use them
/// (so the chunk does not depend on how its rows were batched), then the
/// data pages of keys.
pub(crate) fn dictionary_column(
    parts: &[CodedPart<'_>],
    type_: &PrimitiveType,
    options: WriteOptions,
) -> PolarsResult<Vec<CompressedPage>> {
    const UNSEEN: u32 = u32::MAX;
    let mut values: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32, FastHash> = HashMap::default();
    // Per part: the key of each of its codes (UNSEEN for codes it never uses).
    let mut keys_of: Vec<Vec<u32>> = Vec::with_capacity(parts.len());
    let mut nulls = 0;
    for part in parts {
        let mut keys = vec![UNSEEN; part.values.len()];
        for (code, run) in runs(part.codes) {
            match keys.get_mut(code as usize) {
                // NULL, the one code past every part's values.
                None => nulls += run,
                Some(key) if *key == UNSEEN => {
                    let text = &*part.values[code as usize];
                    *key = *index.entry(text).or_insert_with(|| {
                        values.push(text);
                        (values.len() - 1) as u32
                    });
                }
                Some(_) => {}
            }
        }
        keys_of.push(keys);
    }
    let rows: usize = parts.iter().map(|part| part.codes.len()).sum();

    let mut pages = vec![dictionary_page(&values, options)?];

    let statistics = options
        .has_statistics()
        .then(|| statistics(&values, nulls, type_, options));
    let optional = type_.field_info.repetition == Repetition::Optional;
    // polars-parquet splits a column into pages by its arrow size: 4 bytes
    // of key a row, and a validity bit when some rows have none.
    let bytes = rows * 4 + if nulls > 0 { rows.div_ceil(8) } else { 0 };
    let per_row = bytes.checked_div(rows).unwrap_or(0);
    let page_rows = (PAGE_BYTES / (per_row + 1)).max(1);
    let mut levels = Hybrid::<bool>::new();
    let mut keys = Hybrid::<u32>::new();
    for start in (0..rows).step_by(page_rows) {
        let len = page_rows.min(rows - start);
        let page = slice(parts, &keys_of, start..start + len);
        let mut buffer = Vec::new();
        if optional {
            buffer.extend_from_slice(&[0; 4]);
            let levels_start = buffer.len();
            if nulls > 0 {
                levels.start(1);
                for (codes, _) in &page {
                    for (code, run) in runs(codes) {
                        levels.push_run(&mut buffer, code != NULL, run)?;
                    }
                }
                levels.finish(&mut buffer)?;
            } else {
                <bool as Encoder<bool>>::run_length_encode(&mut buffer, len, true, 1)?;
            }
            let written = (buffer.len() - levels_start) as i32;
            buffer[levels_start - 4..levels_start].copy_from_slice(&written.to_le_bytes());
        }
        let max = if start == 0 && len == rows {
            values.len().saturating_sub(1)
        } else {
            page.iter()
                .flat_map(|(codes, of)| codes.iter().filter_map(|&code| of.get(code as usize)))
                .max()
                .map_or(0, |&key| key as usize)
        };
        let bits = usize::BITS - max.leading_zeros();
        buffer.push(bits as u8);
        keys.start(bits);
        for (codes, of) in &page {
            for (code, run) in runs(codes) {
                if let Some(&key) = of.get(code as usize) {
                    keys.push_run(&mut buffer, key, run)?;
                }
            }
        }
        keys.finish(&mut buffer)?;
        let header = DataPageHeader::V1(DataPageHeaderV1 {
            num_values: len as i32,
            encoding: Encoding::RleDictionary.into(),
            definition_level_encoding: Encoding::Rle.into(),
            repetition_level_encoding: Encoding::Rle.into(),
            statistics: statistics.clone(),
        });
        let descriptor = Descriptor {
            primitive_type: type_.clone(),
            max_def_level: 0,
            max_rep_level: 0,
        };
        let data = DataPage::new(header, CowBuffer::Owned(buffer), descriptor, len);
        pages.push(compress_page(Page::Data(data), options.compression, false)?);
    }
    debug_assert!(options.version == Version::V1, "pages are written as V1");
    Ok(pages)
}

/// A dictionary page of `values`, in their order, compressed.
fn dictionary_page(values: &[&str], options: WriteOptions) -> PolarsResult<CompressedPage> {
    let mut dict = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for value in values {
        dict.extend_from_slice(&(value.len() as u32).to_le_bytes());
        dict.extend_from_slice(value.as_bytes());
    }
    let dict = DictPage::new(CowBuffer::Owned(dict), values.len(), false);
    compress_page(Page::Dict(dict), options.compression, false)
}

/// Lists of low-cardinality text as the one column chunk of a list column
/// (`optional group (LIST) { repeated group list { optional binary element
/// } }`): row `r` lists `codes[ends[r - 1]..ends[r]]` (from 0 for the
/// first row), codes into `values`, each value used and numbered in the
/// order first used (as a `Cat` gathers them). No list and no element is
/// missing; a row may list nothing.
///
/// One dictionary page and one data page: the levels (a repetition level
/// of one bit, a definition level of two) and the keys of the elements.
/// The statistics count the rows that list nothing as missing values, as
/// other writers do.
pub(crate) fn dictionary_list_column(
    codes: &[u32],
    ends: &[u32],
    values: &[Box<str>],
    descriptor: &Descriptor,
    options: WriteOptions,
) -> PolarsResult<Vec<CompressedPage>> {
    let mut pages = Vec::new();
    let mut buffer = Vec::new();
    let mut rep = Hybrid::<u32>::new();
    let mut def = Hybrid::<u32>::new();
    let mut entries = 0;
    let mut empty = 0;
    for (levels, hybrid, bits) in [(0, &mut rep, 1), (1, &mut def, 2)] {
        buffer.extend_from_slice(&[0; 4]);
        let start = buffer.len();
        hybrid.start(bits);
        let mut first = 0;
        for &end in ends {
            let items = (end - first) as usize;
            first = end;
            match (levels, items) {
                (0, 0) => hybrid.push(&mut buffer, 0)?,
                (0, _) => {
                    hybrid.push(&mut buffer, 0)?;
                    hybrid.push_run(&mut buffer, 1, items - 1)?;
                }
                (_, 0) => hybrid.push(&mut buffer, 1)?,
                _ => hybrid.push_run(&mut buffer, 3, items)?,
            }
            if levels == 1 {
                entries += items.max(1);
                empty += usize::from(items == 0);
            }
        }
        hybrid.finish(&mut buffer)?;
        let written = (buffer.len() - start) as i32;
        buffer[start - 4..start].copy_from_slice(&written.to_le_bytes());
    }
    let values: Vec<&str> = values.iter().map(|v| &**v).collect();
    let encoding = if values.is_empty() {
        // No element at all: nothing to look up, and no dictionary.
        Encoding::Plain
    } else {
        pages.push(dictionary_page(&values, options)?);
        let bits = usize::BITS - (values.len() - 1).leading_zeros();
        buffer.push(bits as u8);
        let mut keys = Hybrid::<u32>::new();
        keys.start(bits);
        for (code, run) in runs(codes) {
            keys.push_run(&mut buffer, code, run)?;
        }
        keys.finish(&mut buffer)?;
        Encoding::RleDictionary
    };
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: entries as i32,
        encoding: encoding.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics: options
            .has_statistics()
            .then(|| statistics(&values, empty, &descriptor.primitive_type, options)),
    });
    let data = DataPage::new(
        header,
        CowBuffer::Owned(buffer),
        descriptor.clone(),
        ends.len(),
    );
    pages.push(compress_page(Page::Data(data), options.compression, false)?);
    debug_assert!(options.version == Version::V1, "pages are written as V1");
    Ok(pages)
}

/// Operation ids as one column chunk of plain text, every row present:
/// each id as `operation_id` writes it (`op_` and 16 hex digits, so text
/// order is number order and the bounds come from the numbers), pages of
/// about [`PAGE_BYTES`], compressed as the random text they are.
pub(crate) fn id_column(
    parts: &[&[u64]],
    type_: &PrimitiveType,
    options: WriteOptions,
) -> PolarsResult<Vec<CompressedPage>> {
    const ID_BYTES: usize = 19;
    const PAGE_ROWS: usize = PAGE_BYTES / (4 + ID_BYTES);
    let optional = type_.field_info.repetition == Repetition::Optional;
    let mut ids = parts.iter().flat_map(|part| part.iter().copied());
    let rows: usize = parts.iter().map(|part| part.len()).sum();
    let mut pages = Vec::new();
    let mut text = [0u8; ID_BYTES];
    for start in (0..rows).step_by(PAGE_ROWS) {
        let len = PAGE_ROWS.min(rows - start);
        let mut buffer = Vec::with_capacity(8 + len * (4 + ID_BYTES));
        if optional {
            let mut levels = Vec::new();
            <bool as Encoder<bool>>::run_length_encode(&mut levels, len, true, 1)?;
            buffer.extend_from_slice(&(levels.len() as i32).to_le_bytes());
            buffer.extend_from_slice(&levels);
        }
        let (mut min, mut max) = (u64::MAX, 0);
        for id in ids.by_ref().take(len) {
            min = min.min(id);
            max = max.max(id);
            buffer.extend_from_slice(&(ID_BYTES as u32).to_le_bytes());
            buffer.extend_from_slice(operation_id_into(id, &mut text).as_bytes());
        }
        let statistics = options.has_statistics().then(|| {
            let (min, max) = (operation_id(min), operation_id(max));
            statistics(&[&min, &max], 0, type_, options)
        });
        let header = DataPageHeader::V1(DataPageHeaderV1 {
            num_values: len as i32,
            encoding: Encoding::Plain.into(),
            definition_level_encoding: Encoding::Rle.into(),
            repetition_level_encoding: Encoding::Rle.into(),
            statistics,
        });
        let descriptor = Descriptor {
            primitive_type: type_.clone(),
            max_def_level: i16::from(optional),
            max_rep_level: 0,
        };
        let data = DataPage::new(header, CowBuffer::Owned(buffer), descriptor, len);
        pages.push(compress_page(Page::Data(data), options.compression, true)?);
    }
    Ok(pages)
}

/// One column of a row group encoded by polars-parquet, then compressed;
/// `random` for a column of random text (see [`compress_page`]).
pub(crate) fn encode(
    array: &dyn Array,
    type_: &ParquetType,
    options: WriteOptions,
    encoding: &[Encoding],
    random: bool,
) -> PolarsResult<Vec<CompressedPage>> {
    let mut out = Vec::new();
    for pages in array_to_columns(array, type_.clone(), options, encoding)? {
        for page in pages {
            out.push(compress_page(page?, options.compression, random)?);
        }
    }
    Ok(out)
}

/// The codes of rows `range` of `parts`, a slice per part, each with its
/// part's keys.
fn slice<'a>(
    parts: &[CodedPart<'a>],
    keys_of: &'a [Vec<u32>],
    range: Range<usize>,
) -> Vec<(&'a [u32], &'a [u32])> {
    let mut out = Vec::new();
    let mut first = 0;
    for (part, keys) in parts.iter().zip(keys_of) {
        let last = first + part.codes.len();
        let (from, to) = (range.start.max(first), range.end.min(last));
        if from < to {
            out.push((&part.codes[from - first..to - first], keys.as_slice()));
        }
        first = last;
    }
    out
}

/// Runs of equal codes: each code with how many times it repeats. Columns
/// of few values hold one value for long stretches of rows, so runs are
/// found eight codes at a time.
fn runs(codes: &[u32]) -> impl Iterator<Item = (u32, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let &code = codes.get(at)?;
        let mut end = at + 1;
        while let Some(next) = codes.get(end..end + 8) {
            // Counted, not searched: the eight compares become one vector
            // compare.
            if next.iter().filter(|&&c| c == code).count() < 8 {
                break;
            }
            end += 8;
        }
        while codes.get(end) == Some(&code) {
            end += 1;
        }
        let run = (code, end - at);
        at = end;
        Some(run)
    })
}

/// Literal runs the hybrid encoder buffers at most before packing them.
const LITERAL_MAX: usize = 8 * 1024;

/// Parquet's run-length/bit-packed hybrid encoding, fed a value and how many
/// times it repeats. It makes the choices of polars-parquet's `encode`, one
/// value at a time, until a run is long enough to be run-length encoded;
/// the rest of the run is then counted, not visited. The packing itself is
/// polars-parquet's.
struct Hybrid<T> {
    bits: u32,
    buffered: Vec<T>,
    /// Values buffered; the first `literal` of them are a literal run.
    len: usize,
    literal: usize,
    /// How many times `previous` has repeated (counting from where it was
    /// last buffered).
    repeats: usize,
    previous: T,
}

impl<T: Encoder<T> + Copy + Default + PartialEq> Hybrid<T> {
    fn new() -> Self {
        Hybrid {
            bits: 0,
            buffered: vec![T::default(); LITERAL_MAX],
            len: 0,
            literal: 0,
            repeats: 0,
            previous: T::default(),
        }
    }

    /// Starts encoding values of `bits` bits.
    fn start(&mut self, bits: u32) {
        self.bits = bits;
        self.len = 0;
        self.literal = 0;
        self.repeats = 0;
        self.previous = T::default();
    }

    fn push_run(&mut self, out: &mut Vec<u8>, value: T, mut times: usize) -> std::io::Result<()> {
        while times > 0 {
            if value == self.previous && self.repeats >= 8 {
                self.repeats += times;
                return Ok(());
            }
            self.push(out, value)?;
            times -= 1;
        }
        Ok(())
    }

    fn push(&mut self, out: &mut Vec<u8>, value: T) -> std::io::Result<()> {
        if value == self.previous {
            self.repeats += 1;
            if self.repeats == 8 {
                // The literal run before a run-length run holds a multiple
                // of 8 values: it takes some of the repeats if need be.
                let padding = (8 - self.literal % 8) % 8;
                self.repeats -= padding;
                self.literal += padding;
            }
        } else if self.repeats > 8 {
            self.flush_literal(out)?;
            T::run_length_encode(out, self.repeats, self.previous, self.bits)?;
            self.repeats = 1;
            self.len = 0;
        } else {
            self.literal = self.len;
            self.repeats = 1;
        }
        if self.len == LITERAL_MAX {
            self.literal = LITERAL_MAX;
            self.flush_literal(out)?;
            self.repeats = 1;
            self.len = 0;
        }
        self.buffered[self.len] = value;
        self.previous = value;
        self.len += 1;
        Ok(())
    }

    fn flush_literal(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.literal > 0 {
            let literal = self.buffered[..self.literal].iter().copied();
            T::bitpacked_encode(out, literal, self.bits as usize)?;
            self.literal = 0;
        }
        Ok(())
    }

    /// Writes what is buffered; the encoder can be started again.
    fn finish(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.repeats <= 8 {
            self.literal = self.len;
        }
        self.flush_literal(out)?;
        if self.repeats > 8 {
            T::run_length_encode(out, self.repeats, self.previous, self.bits)?;
        }
        Ok(())
    }
}

/// A column chunk's statistics: its least and greatest value (cut to 64
/// bytes) and its count of missing values.
fn statistics(
    values: &[&str],
    nulls: usize,
    type_: &PrimitiveType,
    options: WriteOptions,
) -> ParquetStatistics {
    let wanted = options.statistics;
    let min = values.iter().min().filter(|_| wanted.min_value);
    let max = values.iter().max().filter(|_| wanted.max_value);
    BinaryStatistics {
        primitive_type: type_.clone(),
        null_count: Some(nulls as i64),
        distinct_count: None,
        min_value: min.map(|v| lower_bound(v).as_bytes().to_vec()),
        max_value: max.map(|v| upper_bound(v)),
    }
    .serialize()
}

/// `text` cut to at most 64 bytes at a character boundary: no greater than
/// `text`.
fn lower_bound(text: &str) -> &str {
    if text.len() <= STATISTIC_BYTES {
        return text;
    }
    let mut end = STATISTIC_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most 64 bytes, its last character that can be raised
/// without changing its length raised: no less than `text`. `text` itself
/// when nothing can be raised.
fn upper_bound(text: &str) -> Vec<u8> {
    let cut = lower_bound(text);
    if cut.len() == text.len() {
        return text.as_bytes().to_vec();
    }
    let raised = cut.char_indices().rev().find_map(|(at, c)| {
        char::from_u32(c as u32 + 1)
            .filter(|next| next.len_utf8() == c.len_utf8())
            .map(|next| (at, next))
    });
    match raised {
        Some((at, next)) => {
            let mut out = cut.as_bytes()[..at].to_vec();
            out.extend_from_slice(next.encode_utf8(&mut [0; 4]).as_bytes());
            out
        }
        None => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use polars_arrow::array::{DictionaryArray, MutableBinaryViewArray, PrimitiveArray};
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::{ArrowDataType, Field, IntegerType};
    use polars_parquet::parquet::encoding::hybrid_rle;
    use polars_parquet::write::{
        array_to_columns, to_parquet_type, CompressionOptions, ParquetType, StatisticsOptions,
        ZstdLevel,
    };

    use super::*;
    use crate::testing::numbers;

    fn options(compression: CompressionOptions) -> WriteOptions {
        WriteOptions {
            statistics: StatisticsOptions::default(),
            compression,
            version: Version::V1,
            data_page_size: None,
        }
    }

    fn text_type() -> PrimitiveType {
        let field = Field::new("model".into(), ArrowDataType::Utf8View, true);
        match to_parquet_type(&field) {
            Ok(ParquetType::PrimitiveType(type_)) => type_,
            other => panic!("a text column has a primitive type, not {other:?}"),
        }
    }

    /// A batch's column: its distinct values in the order first seen, and a
    /// code per row.
    fn batch(rows: &[Option<&str>]) -> (Vec<u32>, Vec<Box<str>>) {
        let mut values: Vec<Box<str>> = Vec::new();
        let codes = rows
            .iter()
            .map(|row| {
                let Some(text) = row else { return NULL };
                if let Some(code) = values.iter().position(|v| &**v == *text) {
                    return code as u32;
                }
                values.push((*text).into());
                (values.len() - 1) as u32
            })
            .collect();
        (codes, values)
    }

    /// What polars-parquet writes for `rows` as a dictionary array whose
    /// values are in the order first seen.
    fn polars_pages(rows: &[Option<&str>], options: WriteOptions) -> Vec<String> {
        let (codes, values) = batch(rows);
        let keys: Vec<u32> = codes
            .iter()
            .map(|&c| if c == NULL { 0 } else { c })
            .collect();
        let validity = codes
            .contains(&NULL)
            .then(|| codes.iter().map(|&c| c != NULL).collect::<Bitmap>());
        let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
        let mut texts = MutableBinaryViewArray::<str>::new();
        for value in &values {
            texts.push_value(&**value);
        }
        let texts = texts.freeze_with_dtype(ArrowDataType::Utf8View).boxed();
        let dtype = ArrowDataType::Dictionary(
            IntegerType::UInt32,
            Box::new(ArrowDataType::Utf8View),
            false,
        );
        let array = DictionaryArray::try_new(dtype, keys, texts).expect("keys in range");
        let type_ = ParquetType::PrimitiveType(text_type());
        let columns = array_to_columns(array.boxed(), type_, options, &[Encoding::RleDictionary])
            .expect("polars-parquet encodes a dictionary array");
        let mut out = Vec::new();
        for pages in columns {
            for page in pages {
                let page = page.expect("a page");
                out.push(format!(
                    "{:?}",
                    compress(page, Vec::new(), options.compression)
                ));
            }
        }
        out
    }

    /// What `dictionary_column` writes for `rows` cut into batches at `cuts`.
    fn our_pages(rows: &[Option<&str>], cuts: &[usize], options: WriteOptions) -> Vec<String> {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < rows.len()));
        bounds.push(rows.len());
        bounds.sort_unstable();
        bounds.dedup();
        let batches: Vec<_> = bounds
            .windows(2)
            .map(|w| batch(&rows[w[0]..w[1]]))
            .collect();
        let parts: Vec<CodedPart<'_>> = batches
            .iter()
            .map(|(codes, values)| CodedPart { codes, values })
            .collect();
        let pages = dictionary_column(&parts, &text_type(), options).expect("pages");
        pages
            .into_iter()
            .map(|page| format!("{:?}", Ok::<_, ()>(page)))
            .collect()
    }

    #[test]
    fn pages_are_the_bytes_polars_parquet_writes_however_the_rows_were_batched() {
        let mut next = numbers(0x9e37_79b9_7f4a_7c15);
        let names = [
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet-4-5",
            "gemini-2.5-pro",
            "deepseek-chat",
            // Longer than the 64 bytes statistics keep, in two scripts.
            "a-model-name-much-longer-than-sixty-four-bytes-of-statistics-keep-z",
            "モデル名がとても長いのでバイト数が統計の上限を超えてしまう",
        ];
        for case in 0..200 {
            // Runs of every length around the encoder's thresholds (8 repeats,
            // 8,192 buffered values), single values, and missing ones.
            let rows_wanted = [0, 1, 7, 9, 100, 3000, 20_000][case % 7] + next(50) as usize;
            let distinct = 1 + next(names.len() as u64) as usize;
            let null_share = [0, 0, 5, 50, 100][case % 5];
            let mut rows = Vec::with_capacity(rows_wanted);
            while rows.len() < rows_wanted {
                let run = match next(4) {
                    0 => 1,
                    1 => 1 + next(10) as usize,
                    2 => 1 + next(200) as usize,
                    _ => 1 + next(9000) as usize,
                };
                let value = if (next(100) as usize) < null_share {
                    None
                } else {
                    Some(names[next(distinct as u64) as usize])
                };
                rows.extend(std::iter::repeat_n(
                    value,
                    run.min(rows_wanted - rows.len()),
                ));
            }
            let cuts: Vec<usize> = (0..next(6))
                .map(|_| next(rows.len() as u64 + 1) as usize)
                .collect();
            let options = options(CompressionOptions::Uncompressed);
            assert_eq!(
                our_pages(&rows, &cuts, options),
                polars_pages(&rows, options),
                "case {case}: {} rows, cut at {cuts:?}",
                rows.len()
            );
        }
    }

    #[test]
    fn a_column_past_a_page_is_split_where_polars_parquet_splits_it() {
        // 250,000 rows of 4-byte keys: past the 1 MiB a page holds.
        let mut next = numbers(7);
        let rows: Vec<Option<&str>> = (0..250_000)
            .map(|_| match next(3) {
                0 => None,
                1 => Some("openai"),
                _ => Some("anthropic"),
            })
            .collect();
        let options = options(CompressionOptions::Uncompressed);
        let ours = our_pages(&rows, &[100_000], options);
        assert_eq!(ours.len(), 3, "a dictionary page and two data pages");
        assert_eq!(ours, polars_pages(&rows, options));
    }

    #[test]
    fn a_dictionary_lists_values_in_the_order_its_rows_first_use_them() {
        // The first batch's first rows went to the row group before: "a" has
        // a code there but shows up here only after "b".
        let (first, first_values) = batch(&[Some("a"), None, Some("b"), Some("a"), None]);
        let (second, second_values) = batch(&[Some("c"), Some("b"), None]);
        let parts = [
            CodedPart {
                codes: &first[2..],
                values: &first_values,
            },
            CodedPart {
                codes: &second,
                values: &second_values,
            },
        ];
        let options = options(CompressionOptions::Uncompressed);
        let ours: Vec<String> = dictionary_column(&parts, &text_type(), options)
            .expect("pages")
            .into_iter()
            .map(|page| format!("{:?}", Ok::<_, ()>(page)))
            .collect();
        let rows = [Some("b"), Some("a"), None, Some("c"), Some("b"), None];
        assert_eq!(ours, polars_pages(&rows, options));
    }

    #[test]
    fn pages_compress_as_polars_parquet_does_and_random_text_decompresses_page_by_page() {
        let mut next = numbers(42);
        let hex = b"0123456789abcdef";
        for page in 0..4 {
            // Plain-encoded ids: length, then text; some pages tiny.
            let mut buffer = Vec::new();
            for _ in 0..[1, 10, 5000, 40_000][page] {
                let id: Vec<u8> = b"req_"
                    .iter()
                    .copied()
                    .chain((0..16).map(|_| hex[next(16) as usize]))
                    .collect();
                buffer.extend_from_slice(&(id.len() as u32).to_le_bytes());
                buffer.extend_from_slice(&id);
            }
            let header = DataPageHeader::V1(DataPageHeaderV1 {
                num_values: 1,
                encoding: Encoding::Plain.into(),
                definition_level_encoding: Encoding::Rle.into(),
                repetition_level_encoding: Encoding::Rle.into(),
                statistics: None,
            });
            let descriptor = Descriptor {
                primitive_type: text_type(),
                max_def_level: 0,
                max_rep_level: 0,
            };
            let data = DataPage::new(header, CowBuffer::Owned(buffer.clone()), descriptor, 1);
            let level_1 = CompressionOptions::Zstd(ZstdLevel::try_new(1).ok());
            // Not random: the bytes polars-parquet's `compress` writes.
            let ours = compress_page(Page::Data(data.clone()), level_1, false).expect("compressed");
            let theirs =
                compress(Page::Data(data.clone()), Vec::new(), level_1).expect("compressed");
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "page {page}");
            let CompressedPage::Data(mut compressed) =
                compress_page(Page::Data(data), level_1, true).expect("compressed")
            else {
                panic!("a data page stays a data page");
            };
            assert_eq!(compressed.uncompressed_size(), buffer.len());
            let mut back = vec![0; buffer.len()];
            let read = zstd_safe::decompress(&mut back, compressed.slice_mut())
                .expect("a zstd frame of its own");
            assert_eq!(&back[..read], &buffer[..], "page {page}");
            if buffer.len() > 100_000 {
                assert!(
                    compressed.compressed_size() < buffer.len() * 2 / 3,
                    "hex is entropy-coded"
                );
            }
        }
    }

    #[test]
    fn the_hybrid_encoder_makes_the_bytes_of_polars_parquets() {
        let mut next = numbers(0x1234_5678);
        for case in 0..300 {
            let bits = 1 + next(12) as u32;
            let mut values = Vec::new();
            for _ in 0..next(40) {
                let run = match next(3) {
                    0 => 1 + next(9),
                    1 => 1 + next(100),
                    _ => 1 + next(20_000),
                };
                values.extend(std::iter::repeat_n(next(1 << bits) as u32, run as usize));
            }
            let mut want = Vec::new();
            hybrid_rle::encode::<u32, _, _>(&mut want, values.iter().copied(), bits)
                .expect("in memory");
            let mut got = Vec::new();
            let mut hybrid = Hybrid::<u32>::new();
            hybrid.start(bits);
            for (value, run) in runs(&values) {
                hybrid.push_run(&mut got, value, run).expect("in memory");
            }
            hybrid.finish(&mut got).expect("in memory");
            assert_eq!(
                got,
                want,
                "case {case}: {} values of {bits} bits",
                values.len()
            );
        }
    }
}
