//! The simulated network: per-link fates (loss, duplication, variable
//! delay and with it reordering) and partitions, symmetric or one-way.

use super::rng::SimRng;
use paxos_core::Duration;

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
        }
    }
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

    /// The delays after which copies of a message from `from` to `to`
    /// arrive: none if it is lost or cut, two if duplicated.
    pub fn fates(&mut self, rng: &mut SimRng, from: usize, to: usize) -> Vec<Duration> {
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
        let copies = if rng.chance_ppm(w.dup_ppm) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let us = if rng.chance_ppm(w.slow_ppm) {
                    rng.between(w.delay_us.1, w.delay_us.1.max(w.slow_max_us))
                } else {
                    rng.between(w.delay_us.0, w.delay_us.1)
                };
                Duration::from_micros(us.max(1))
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

    /// Restores every link.
    pub fn heal(&mut self) {
        self.generation += 1;
        self.cut.iter_mut().for_each(|c| *c = false);
    }
}
