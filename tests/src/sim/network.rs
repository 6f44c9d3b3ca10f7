//! The simulated network: per-link fates (loss, duplication, variable
//! delay and with it reordering, copies held back for seconds) and
//! partitions, symmetric, one-way, or overlapping (a bridge node that
//! both sides reach).

use super::SimRng;
use paxos_core::replica::wire::decode_header;
use paxos_core::replica::Header;
use paxos_core::Duration;

/// What a message is, for the fates that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Phase 1a.
    Prepare,
    /// Phase 1b.
    Promise,
    /// Phase 2a and heartbeats.
    Append,
    /// Phase 2b.
    Accepted,
    /// A refusal.
    Nack,
    /// A catch-up request.
    CatchUp,
    /// A catch-up answer.
    Learn,
    /// An application snapshot (sent by the driver, not the replica).
    Snapshot,
}

impl Kind {
    /// The kind of a replica frame (one that does not decode counts as an
    /// append: it is dropped by its receiver either way).
    pub fn of(frame: &[u8]) -> Kind {
        match decode_header::<Header>(frame).map(|(h, _)| h) {
            Ok(Header::Prepare { .. }) => Kind::Prepare,
            Ok(Header::Promise { .. }) => Kind::Promise,
            Ok(Header::Accepted { .. }) => Kind::Accepted,
            Ok(Header::Nack { .. }) => Kind::Nack,
            Ok(Header::CatchUp { .. }) => Kind::CatchUp,
            Ok(Header::Learn { .. }) => Kind::Learn,
            Ok(Header::Append { .. }) | Err(_) => Kind::Append,
        }
    }

    /// The side paths that move a node's state outside the two phases:
    /// their stale copies are the ones that find bugs.
    pub fn side_path(self) -> bool {
        matches!(self, Kind::CatchUp | Kind::Learn | Kind::Snapshot)
    }
}

/// The network's fault rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weather {
    /// Probability (ppm) that a message is lost.
    pub loss_ppm: u32,
    /// Probability (ppm) that a message is delivered twice.
    pub dup_ppm: u32,
    /// The ordinary delay: `min..=max` microseconds.
    pub delay_us: (u64, u64),
    /// Probability (ppm) that a message is held back much longer.
    pub slow_ppm: u32,
    /// The delay of a held-back message: up to this many microseconds.
    pub slow_max_us: u64,
    /// Probability (ppm) that a catch-up request, a catch-up answer or a
    /// snapshot is delivered twice (at least `dup_ppm`).
    pub side_dup_ppm: u32,
    /// Probability (ppm) that the second copy of a duplicated message is
    /// held back for long: a stale copy that arrives after elections.
    pub hold_ppm: u32,
    /// The delay of a copy held back for long: up to this many
    /// microseconds.
    pub hold_max_us: u64,
}

impl Weather {
    /// A reliable network with a small jitter: what the cluster gets
    /// once faults stop (messages still reorder).
    pub const CALM: Weather = Weather {
        loss_ppm: 0,
        dup_ppm: 0,
        delay_us: (100, 2_000),
        slow_ppm: 0,
        slow_max_us: 0,
        side_dup_ppm: 0,
        hold_ppm: 0,
        hold_max_us: 0,
    };

    /// Random fault rates for a stormy run.
    pub fn draw(rng: &mut SimRng) -> Weather {
        let min = rng.between(50, 1_000);
        Weather {
            loss_ppm: [0, 10_000, 50_000, 200_000][rng.index(4)],
            dup_ppm: [0, 10_000, 50_000][rng.index(3)],
            delay_us: (min, min + rng.between(0, 10_000)),
            slow_ppm: [0, 5_000, 50_000][rng.index(3)],
            slow_max_us: rng.between(20_000, 500_000),
            side_dup_ppm: [0, 100_000, 300_000, 1_000_000][rng.index(4)],
            hold_ppm: [0, 500_000, 1_000_000][rng.index(3)],
            hold_max_us: rng.between(200_000, 5_000_000),
        }
    }
}

/// A delay between `lo` and `hi` microseconds, as likely in every octave
/// (a held copy is as likely to come back after a tenth of a second as
/// after seconds).
fn log_uniform(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    let (lo_bits, hi_bits) = (63 - lo.leading_zeros(), 63 - hi.leading_zeros());
    let octave = rng.between(u64::from(lo_bits), u64::from(hi_bits)) as u32;
    let base = 1u64 << octave;
    rng.between(base, 2 * base - 1).clamp(lo, hi)
}

/// Message counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network (one per recipient).
    pub sent: u64,
    /// Messages delivered to a running node.
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Extra copies held back for long.
    pub held: u64,
    /// Dropped by a partition (at sending or delivery) or because the
    /// recipient was down.
    pub cut: u64,
}

/// Links between `n` nodes, each up or cut in one direction.
#[derive(Clone, Debug)]
pub struct Network {
    n: usize,
    cut: Vec<bool>,
    /// The current fault rates.
    pub weather: Weather,
    /// Bumped by every partition change, so a scheduled heal only heals
    /// the partition it was scheduled for.
    pub generation: u64,
    /// Per node, extra delay (microseconds) of every message it sends or
    /// receives: a congested node, whose slow answers widen the windows in
    /// which two candidates both win. Cleared by healing.
    pub lag_us: Vec<u64>,
    /// Counters.
    pub stats: NetStats,
}

impl Network {
    /// A fully connected network of `n` nodes.
    pub fn new(n: usize, weather: Weather) -> Self {
        Network {
            n,
            cut: vec![false; n * n],
            weather,
            generation: 0,
            lag_us: vec![0; n],
            stats: NetStats::default(),
        }
    }

    /// Whether `from` can reach `to` now.
    pub fn link_up(&self, from: usize, to: usize) -> bool {
        !self.cut[from * self.n + to]
    }

    /// Whether any link is cut.
    pub fn partitioned(&self) -> bool {
        self.cut.iter().any(|c| *c)
    }

    /// The delays after which copies of a message of `kind` from `from`
    /// to `to` arrive: none if it is lost or cut, two if duplicated (the
    /// second perhaps held back for seconds).
    pub fn fates(&mut self, rng: &mut SimRng, from: usize, to: usize, kind: Kind) -> Vec<Duration> {
        self.stats.sent += 1;
        if !self.link_up(from, to) {
            self.stats.cut += 1;
            return Vec::new();
        }
        let w = self.weather;
        if rng.chance_ppm(w.loss_ppm) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let dup_ppm = if kind.side_path() {
            w.dup_ppm.max(w.side_dup_ppm)
        } else {
            w.dup_ppm
        };
        let copies = if rng.chance_ppm(dup_ppm) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies)
            .map(|copy| {
                let us = if copy == 1 && w.hold_max_us > 0 && rng.chance_ppm(w.hold_ppm) {
                    self.stats.held += 1;
                    log_uniform(rng, w.delay_us.1.max(1_000), w.hold_max_us)
                } else if rng.chance_ppm(w.slow_ppm) {
                    rng.between(w.delay_us.1, w.delay_us.1.max(w.slow_max_us))
                } else {
                    rng.between(w.delay_us.0, w.delay_us.1)
                };
                Duration::from_micros(us.max(1) + self.lag_us[from] + self.lag_us[to])
            })
            .collect()
    }

    /// Cuts every link between `side` and the other nodes, both ways.
    pub fn partition(&mut self, side: &[bool]) {
        self.generation += 1;
        for a in 0..self.n {
            for b in 0..self.n {
                self.cut[a * self.n + b] = side[a] != side[b];
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        self.generation += 1;
        self.cut[from * self.n + to] = true;
    }

    /// Cuts everything `node` sends (`outgoing`) or receives.
    pub fn isolate_one_way(&mut self, node: usize, outgoing: bool) {
        self.generation += 1;
        for other in (0..self.n).filter(|o| *o != node) {
            let (a, b) = if outgoing { (node, other) } else { (other, node) };
            self.cut[a * self.n + b] = true;
        }
    }

    /// Cuts every link between `side` and the other nodes, both ways,
    /// except those of `bridge`, which both sides reach: each side with
    /// the bridge may be a quorum, and two leaders may lead at once.
    pub fn partition_with_bridge(&mut self, side: &[bool], bridge: usize) {
        self.generation += 1;
        for a in 0..self.n {
            for b in 0..self.n {
                self.cut[a * self.n + b] = a != bridge && b != bridge && side[a] != side[b];
            }
        }
    }

    /// Restores every link, and their speed.
    pub fn heal(&mut self) {
        self.generation += 1;
        self.cut.iter_mut().for_each(|c| *c = false);
        self.lag_us.iter_mut().for_each(|l| *l = 0);
    }
}
