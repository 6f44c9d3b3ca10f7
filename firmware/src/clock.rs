//! The monotonic clock: SysTick interrupts count milliseconds.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use paxos_core::Instant;

/// The core clock assumed for the lm3s6965evb at reset: its 12 MHz
/// oscillator (not measured under QEMU; the replica only needs timeouts
/// of the right order of magnitude, not an accurate rate).
const CORE_HZ: u32 = 12_000_000;
/// Ticks per second.
pub const TICK_HZ: u32 = 1_000;

static TICKS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes: a load and a store are enough.
    TICKS.store(TICKS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The clock, started once at boot.
pub struct Clock {
    /// The last reading and the wraps of the 32-bit tick counter seen so
    /// far, so that `now` stays monotonic past 49 days.
    last: u32,
    wraps: u64,
}

impl Clock {
    /// Starts SysTick at [`TICK_HZ`].
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / TICK_HZ - 1);
        syst.clear_current();
        syst.enable_counter();
        syst.enable_interrupt();
        Clock { last: 0, wraps: 0 }
    }

    /// Milliseconds since boot.
    pub fn now(&mut self) -> Instant {
        let ticks = TICKS.load(Ordering::Relaxed);
        if ticks < self.last {
            self.wraps += 1;
        }
        self.last = ticks;
        Instant::from_millis((self.wraps << 32 | u64::from(ticks)) * 1000 / u64::from(TICK_HZ))
    }
}
