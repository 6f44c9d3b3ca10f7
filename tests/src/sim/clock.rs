//! Node clocks: each node reads virtual time through its own offset and
//! rate error, so leases are tested under the drift they must tolerate.

use paxos_core::Instant;

const MILLION: i128 = 1_000_000;

/// One node's clock: `local = offset + virtual × (1 + ppm / 10⁶)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// What the clock reads at virtual time zero, in µs.
    pub offset_us: u64,
    /// Its rate error in parts per million (negative: slow).
    pub ppm: i64,
}

impl Clock {
    /// A perfect clock.
    pub const EXACT: Clock = Clock { offset_us: 0, ppm: 0 };

    /// What the clock reads at virtual time `t`.
    pub fn local(&self, t: Instant) -> Instant {
        let v = i128::from(t.as_micros());
        let drifted = v * (MILLION + i128::from(self.ppm)) / MILLION;
        Instant::from_micros(clamp(i128::from(self.offset_us) + drifted))
    }

    /// The earliest virtual time at which the clock reads at least `local`.
    pub fn virtual_at(&self, local: Instant) -> Instant {
        let l = i128::from(local.as_micros().saturating_sub(self.offset_us));
        let rate = MILLION + i128::from(self.ppm);
        Instant::from_micros(clamp((l * MILLION + rate - 1) / rate))
    }
}

fn clamp(us: i128) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_at_is_the_first_instant_the_clock_reaches() {
        for clock in [
            Clock::EXACT,
            Clock {
                offset_us: 7,
                ppm: 100_000,
            },
            Clock {
                offset_us: 1_000,
                ppm: -99_999,
            },
        ] {
            for local in [0u64, 1, 999, 1_000, 1_001, 123_456_789] {
                let v = clock.virtual_at(Instant::from_micros(local));
                assert!(clock.local(v).as_micros() >= local, "{clock:?} {local}");
                if v.as_micros() > 0 {
                    let before = Instant::from_micros(v.as_micros() - 1);
                    assert!(clock.local(before).as_micros() < local, "{clock:?} {local}");
                }
            }
        }
        assert_eq!(
            Clock::EXACT.virtual_at(Instant::from_micros(u64::MAX)).as_micros(),
            u64::MAX
        );
    }
}
