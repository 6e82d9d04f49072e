//! Stage 1 of the tape on one 64-byte block: the quote, backslash,
//! control, whitespace and operator masks, with SSE2, AVX2 or AVX-512BW
//! chosen at run time, and a portable version.

/// The masks of one 64-byte block: bit `i` for byte `i`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Masks {
    pub(super) quote: u64,
    pub(super) backslash: u64,
    /// Bytes below 0x20 (not allowed raw inside strings).
    pub(super) control: u64,
    /// Space, tab, line feed, carriage return.
    pub(super) space: u64,
    /// `{`, `}`, `[`, `]`, `:`, `,`.
    pub(super) op: u64,
}

/// The masks of a block, a byte at a time (platforms without the SSE2 path;
/// and the reference the SSE2 path is tested against).
#[cfg_attr(all(target_arch = "x86_64", not(fuzzing)), allow(dead_code))]
pub(super) fn block_masks(block: &[u8]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate().take(64) {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b' ' | b'\t' | b'\n' | b'\r' => m.space |= bit,
            b'{' | b'}' | b'[' | b']' | b':' | b',' => m.op |= bit,
            _ => {}
        }
        if b < 0x20 {
            m.control |= bit;
        }
    }
    m
}

/// The masks of a 64-byte block, 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
pub(super) fn block_masks_sse2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let splat = |b: u8| _mm_set1_epi8(b as i8);
    let mut m = Masks::default();
    for (i, lane) in block.chunks_exact(16).enumerate().take(4) {
        let lo = u64::from_le_bytes(lane[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(lane[8..].try_into().unwrap_or_default());
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        let shift = i * 16;
        let bits = |x: __m128i| u64::from(_mm_movemask_epi8(x) as u16) << shift;
        let eq = |b: u8| _mm_cmpeq_epi8(v, splat(b));
        m.quote |= bits(eq(b'"'));
        m.backslash |= bits(eq(b'\\'));
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        m.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, splat(0x1f)), splat(0x1f)));
        m.space |= bits(_mm_or_si128(
            _mm_or_si128(eq(b' '), eq(b'\t')),
            _mm_or_si128(eq(b'\n'), eq(b'\r')),
        ));
        // Setting bit 5 folds `[` onto `{` and `]` onto `}`.
        let folded = _mm_or_si128(v, splat(0x20));
        m.op |= bits(_mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(folded, splat(b'{')),
                _mm_cmpeq_epi8(folded, splat(b'}')),
            ),
            _mm_or_si128(eq(b':'), eq(b',')),
        ));
    }
    m
}

/// Writes the offset `base + i` of each bit `i` set in `tokens` to the
/// front of `out`, in order; the rest of `out` is left as it was or
/// overwritten, and the next block writes over it.
#[inline]
pub(super) fn write_tokens(out: &mut [u32; 64], mut tokens: u64, base: u32) {
    let mut k = 0;
    while tokens != 0 {
        out[k & 63] = base.wrapping_add(tokens.trailing_zeros());
        tokens &= tokens - 1;
        k += 1;
    }
}

/// [`write_tokens`] without a branch per token: each 16 bits of `tokens`
/// pick their offsets out of a vector of 16 (AVX-512 compress), stored
/// whole, the next store starting where the picked ones end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,popcnt")]
#[inline]
pub(super) fn write_tokens_avx512(out: &mut [u32; 64], tokens: u64, base: u32) {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_maskz_compress_epi32, _mm512_set1_epi32,
        _mm512_setr_epi32, _mm512_storeu_si512,
    };
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut at = 0usize;
    for quarter in 0..4u32 {
        let bits = (tokens >> (16 * quarter)) as u16;
        let first = base.wrapping_add(16 * quarter) as i32;
        let picked =
            _mm512_maskz_compress_epi32(bits, _mm512_add_epi32(lanes, _mm512_set1_epi32(first)));
        // At most 48 offsets precede the last quarter's, so 16 more fit.
        if let Some(slot) = out.get_mut(at..at + 16) {
            // SAFETY: an unaligned store of exactly the 16 `u32` `slot` borrows.
            #[allow(unsafe_code, clippy::cast_ptr_alignment)]
            unsafe {
                _mm512_storeu_si512(slot.as_mut_ptr().cast::<__m512i>(), picked);
            }
        }
        at += bits.count_ones() as usize;
    }
}

/// For each byte value, the positions of its set bits in ascending order,
/// the rest zero: [`write_tokens_avx2`]'s table.
#[cfg(target_arch = "x86_64")]
pub(super) static BIT_POSITIONS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if byte & (1 << bit) != 0 {
                table[byte][k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// [`write_tokens`] without a branch per token, for CPUs with AVX2 but not
/// AVX-512: each byte of `tokens` looks up the positions of its bits
/// ([`BIT_POSITIONS`]), widened to eight offsets and stored whole, the next
/// store starting where the set bits end. A block costs eight table reads
/// whatever its count of tokens, and no mispredicted loop exit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
pub(super) fn write_tokens_avx2(out: &mut [u32; 64], tokens: u64, base: u32) {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_cvtepu8_epi32, _mm256_set1_epi32, _mm256_storeu_si256,
        _mm_cvtsi64_si128,
    };
    let mut at = 0usize;
    for eighth in 0..8u32 {
        let bits = (tokens >> (8 * eighth)) as u8;
        let positions = u64::from_le_bytes(BIT_POSITIONS[usize::from(bits)]);
        let first = base.wrapping_add(8 * eighth) as i32;
        let offsets = _mm256_add_epi32(
            _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(positions as i64)),
            _mm256_set1_epi32(first),
        );
        // At most 56 offsets precede the last byte's, so 8 more fit.
        if let Some(slot) = out.get_mut(at..at + 8) {
            // SAFETY: an unaligned store of exactly the 8 `u32` `slot` borrows.
            #[allow(unsafe_code, clippy::cast_ptr_alignment)]
            unsafe {
                _mm256_storeu_si256(slot.as_mut_ptr().cast::<__m256i>(), offsets);
            }
        }
        at += bits.count_ones() as usize;
    }
}

/// The widest compares this CPU has, for stage 1.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Simd {
    Sse2,
    Avx2,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
pub(super) fn simd_level() -> Simd {
    // The standard library caches the CPU's answer: a load and a test.
    // Token offsets come from counting trailing zeros and set bits, one
    // instruction each with BMI1 and POPCNT (every CPU with AVX2 has both).
    let counts = std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("popcnt");
    if counts
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        Simd::Avx512
    } else if counts && std::arch::is_x86_feature_detected!("avx2") {
        Simd::Avx2
    } else {
        Simd::Sse2
    }
}

/// The masks of a 64-byte block, 32 bytes per compare. Spaces and
/// operators are found by table (simdjson's classification): a byte below
/// 0x80 is one of them when it equals the entry its low nibble picks from a
/// 16-byte table (`vpshufb`; bytes from 0x80 pick zero).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn block_masks_avx2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8, _mm256_setr_epi8, _mm256_shuffle_epi8,
    };
    // Each of the 16 entries twice, once per 128-bit lane.
    let table = |t: [u8; 16]| {
        let b = t.map(|b| b as i8);
        _mm256_setr_epi8(
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15], b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
            b[12], b[13], b[14], b[15],
        )
    };
    let splat = |b: u8| _mm256_set1_epi8(b as i8);
    // At its low nibble, each space; zero elsewhere, which no byte of
    // another low nibble can equal.
    let spaces = table([
        b' ', 0, 0, 0, 0, 0, 0, 0, 0, b'\t', b'\n', 0, 0, b'\r', 0, 0,
    ]);
    // Compared with the byte with bit 5 set, which folds `[` onto `{` and
    // `]` onto `}`, and also 0x1a onto `:` and 0x0c onto `,`: those two are
    // control bytes, taken out below.
    let ops = table([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0]);
    let mut m = Masks::default();
    let mut op = 0u64;
    for (i, lane) in block.chunks_exact(32).enumerate().take(2) {
        let Ok(lane) = <&[u8; 32]>::try_from(lane) else {
            continue;
        };
        // SAFETY: an unaligned load of exactly the 32 bytes `lane` borrows.
        #[allow(unsafe_code, clippy::cast_ptr_alignment)]
        let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast::<__m256i>()) };
        let shift = i * 32;
        let bits = |x: __m256i| u64::from(_mm256_movemask_epi8(x) as u32) << shift;
        let eq = |b: u8| _mm256_cmpeq_epi8(v, splat(b));
        m.quote |= bits(eq(b'"'));
        m.backslash |= bits(eq(b'\\'));
        // An unsigned byte is below 0x20 when max(byte, 0x1f) is 0x1f.
        m.control |= bits(_mm256_cmpeq_epi8(
            _mm256_max_epu8(v, splat(0x1f)),
            splat(0x1f),
        ));
        m.space |= bits(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(spaces, v), v));
        op |= bits(_mm256_cmpeq_epi8(
            _mm256_shuffle_epi8(ops, v),
            _mm256_or_si256(v, splat(0x20)),
        ));
    }
    m.op = op & !m.control;
    m
}

/// The masks of a 64-byte block in one compare each: AVX-512BW compares
/// give the bit masks directly.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
pub(super) fn block_masks_avx512(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask, _mm512_loadu_si512,
        _mm512_or_si512, _mm512_set1_epi8,
    };
    let Ok(block) = <&[u8; 64]>::try_from(block) else {
        return block_masks(block);
    };
    // SAFETY: an unaligned load of exactly the 64 bytes `block` borrows.
    #[allow(unsafe_code, clippy::cast_ptr_alignment)]
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast::<__m512i>()) };
    let splat = |b: u8| _mm512_set1_epi8(b as i8);
    let eq = |b: u8| _mm512_cmpeq_epi8_mask(v, splat(b));
    // Setting bit 5 folds `[` onto `{` and `]` onto `}`.
    let folded = _mm512_or_si512(v, splat(0x20));
    Masks {
        quote: eq(b'"'),
        backslash: eq(b'\\'),
        control: _mm512_cmplt_epu8_mask(v, splat(0x20)),
        space: eq(b' ') | eq(b'\t') | eq(b'\n') | eq(b'\r'),
        op: _mm512_cmpeq_epi8_mask(folded, splat(b'{'))
            | _mm512_cmpeq_epi8_mask(folded, splat(b'}'))
            | eq(b':')
            | eq(b','),
    }
}
