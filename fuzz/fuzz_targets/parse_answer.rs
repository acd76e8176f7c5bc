//! Any bytes as a `queryRecordHistory` answer: a page or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = oifde_sync::api::parse_query_answer(data);
});
