//! What the node tells the host. Plain semihosting text by default, one
//! line per fact, which the cluster test parses; through defmt with the
//! `defmt` feature.

use paxos_core::replica::Slot;

#[cfg(not(feature = "defmt"))]
use semihosting::println;

/// A node started: its id, the first slot its application still needs,
/// the slots decided in its recovered log and the flash pages in use.
pub fn boot(id: u8, applied: Slot, decided: Slot, flash_pages: u32) {
    #[cfg(not(feature = "defmt"))]
    println!("BOOT node={id} applied={applied} decided={decided} flash_pages={flash_pages}");
    #[cfg(feature = "defmt")]
    defmt::info!(
        "BOOT node={} applied={} decided={} flash_pages={}",
        id,
        applied,
        decided,
        flash_pages
    );
}

/// The sizes that bound the node's RAM.
pub fn footprint(replica: usize, rx: usize, tx: usize, persist: usize, scratch: usize) {
    #[cfg(not(feature = "defmt"))]
    println!("SIZE replica={replica} rx={rx} tx={tx} persist={persist} scratch={scratch}");
    #[cfg(feature = "defmt")]
    defmt::info!(
        "SIZE replica={} rx={} tx={} persist={} scratch={}",
        replica,
        rx,
        tx,
        persist,
        scratch
    );
}

/// Slot `slot` is decided with `value` (`None`: a no-op) and applied.
pub fn decided(slot: Slot, value: Option<&[u8]>) {
    #[cfg(not(feature = "defmt"))]
    match value.map(core::str::from_utf8) {
        Some(Ok(text)) => println!("D {slot} {text}"),
        Some(Err(_)) => println!("D {slot} ?{value:02x?}"),
        None => println!("D {slot} -"),
    }
    #[cfg(feature = "defmt")]
    defmt::info!("D {} {=[u8]}", slot, value.unwrap_or_default());
}

/// This node leads now.
pub fn leader(round: u64) {
    #[cfg(not(feature = "defmt"))]
    println!("LEADER round={round}");
    #[cfg(feature = "defmt")]
    defmt::info!("LEADER round={}", round);
}

/// The log was compacted; `applied` is the application's state there.
pub fn compacted(applied: Slot, pages: u32) {
    #[cfg(not(feature = "defmt"))]
    println!("COMPACT applied={applied} flash_pages={pages}");
    #[cfg(feature = "defmt")]
    defmt::info!("COMPACT applied={} flash_pages={}", applied, pages);
}

/// The application's state, now and then: the test compares them.
pub fn state(applied: Slot, count: u64, hash: u32) {
    #[cfg(not(feature = "defmt"))]
    println!("STATE applied={applied} count={count} hash={hash:08x}");
    #[cfg(feature = "defmt")]
    defmt::info!("STATE applied={} count={} hash={=u32:08x}", applied, count, hash);
}

/// Something went wrong.
pub fn error(what: &str) {
    #[cfg(not(feature = "defmt"))]
    println!("ERR {what}");
    #[cfg(feature = "defmt")]
    defmt::error!("ERR {=str}", what);
}
