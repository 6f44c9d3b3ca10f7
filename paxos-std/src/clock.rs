//! Converts the std clock into the core's time.

use paxos_core::Instant;

/// A monotonic clock whose origin is its creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The core's instant for now.
    pub fn now(&self) -> Instant {
        let micros = self.origin.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// How long from now until `deadline` (zero if past).
    pub fn until(&self, deadline: Instant) -> std::time::Duration {
        let now = self.now();
        std::time::Duration::from_micros(deadline.as_micros().saturating_sub(now.as_micros()))
    }
}
