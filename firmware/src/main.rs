//! Example firmware: one node of a three-node Multi-Paxos cluster on the
//! lm3s6965evb (Cortex-M3), as QEMU emulates it.
//!
//! - Messages travel over UART0 as [`paxos_embedded::framing`] frames whose
//!   payload is `[from][to][channel][body]` (a replica frame, or an
//!   application snapshot for a lagging peer); a host relay routes them.
//! - The node id (1, 2 or 3) is the last word of the semihosting command
//!   line (QEMU `-append 2`), so one ELF serves all three nodes.
//! - The log ([`paxos_embedded::flash::FlashLog`]) lives on a NOR flash
//!   kept in the host file `node{id}.flash` (semihosting), so a node
//!   restarted by the host recovers from it.
//! - The leader proposes `n{id}-{k}` values; every node applies decided
//!   values and reports them as `D slot value` lines on semihosting stdout.
#![no_std]
#![no_main]

mod app;
mod clock;
mod node;
mod report;
mod semiflash;
mod uart;

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    let code = match node::run() {
        Ok(never) => match never {},
        Err(e) => {
            report::error(e);
            1
        }
    };
    semihosting::process::exit(code)
}
