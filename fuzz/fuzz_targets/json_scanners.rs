//! Any text: the token tape (SIMD first stage, walk over tokens) and the
//! byte walker accept exactly the same lines, with the same members.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(disagreement) = faultline_ingest::scanners_agree(text) {
            panic!("{text:?}: {disagreement}");
        }
    }
});
