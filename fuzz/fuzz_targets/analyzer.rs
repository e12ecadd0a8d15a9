#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uringtrace::fuzzing::analyzer(data));
