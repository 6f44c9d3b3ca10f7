//! Fuzz target: see `paxos_embedded::flash::testing::mount_flash`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| paxos_embedded::flash::testing::mount_flash(data));
