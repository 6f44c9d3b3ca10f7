//! [`SyncPipeline`]: a [`FileLog`] on its own thread, so that a node keeps
//! working while its disk syncs.
//!
//! The core writes each batch straight into a buffer the pipeline lends
//! ([`driver::Storage::buffer`]); `append` queues that buffer, no copy,
//! and the driver asks what is durable ([`driver::Storage::sync`]
//! never waits). The thread writes everything queued, calls `fdatasync`
//! once, publishes the newest batch that sync covered and wakes the driver.
//! While it syncs one group, the next group queues: syncs are pipelined
//! with the work that fills the next one, and a group is as large as the
//! time one sync takes allows.
//!
//! Jobs run in the order they were queued: a compaction covers every batch
//! queued before it. The first error stops the thread; the driver learns
//! it from its next call and must stop the node: nothing after it is
//! confirmed. Dropping the pipeline finishes the queued work (a graceful
//! stop loses nothing that was handed over) and joins the thread.

use super::{FileLog, Stats, StorageError};
use paxos_core::driver;
use paxos_core::PersistSeq;
use std::collections::VecDeque;
use std::mem;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Queued bytes beyond which [`driver::Storage::append`] waits for the
/// disk: backpressure instead of unbounded memory when the disk is slower
/// than the network.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Called by the sync thread after each sync (or failure), from that
/// thread: wake the driver so that it confirms what became durable.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Spare batch buffers kept for reuse, at most.
const FREE_BUFFERS: usize = 64;

/// The size of each batch buffer [`SyncPipeline::start`] lends the core: a
/// batch is at most this long (the core splits what does not fit). A
/// replica whose `MIN_PERSIST_BUFFER` exceeds it needs
/// [`SyncPipeline::with_batch_buffer`].
pub const BATCH_BUFFER: usize = 64 << 10;

enum Job {
    /// Batch `seq`: the first `len` bytes of the buffer.
    Batch(PersistSeq, Vec<u8>, usize),
    Compact {
        snapshot: Vec<u8>,
        checkpoint: Vec<u8>,
    },
}

impl Job {
    fn len(&self) -> usize {
        match self {
            Job::Batch(_, _, len) => *len,
            Job::Compact { snapshot, checkpoint } => snapshot.len() + checkpoint.len(),
        }
    }
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Bytes in `jobs` and in the group the thread is writing.
    queued: usize,
    /// The newest batch a finished sync covered.
    durable: PersistSeq,
    /// The thread's first error, until the driver takes it.
    error: Option<StorageError>,
    /// The thread stopped on an error.
    failed: bool,
    stopping: bool,
    stats: Stats,
    /// Buffers the thread is done with, for the next appends.
    free: Vec<Vec<u8>>,
}

struct Shared {
    state: Mutex<State>,
    /// Work queued, or stop.
    work: Condvar,
    /// Room in the queue, or the thread stopped.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on the other side leaves consistent data: every update
        // below is a plain assignment under the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`FileLog`] written and synced by its own thread.
///
/// The driver hands batches over ([`driver::Storage::append`] copies them
/// into a queue) and asks what is durable ([`driver::Storage::sync`] never
/// waits). The thread writes everything queued, calls `fdatasync` once,
/// publishes the newest batch that sync covered and calls the wake-up
/// given to [`SyncPipeline::start`]. Jobs run in queue order: a
/// compaction covers every batch queued before it. The first error stops
/// the thread; the driver's next call returns it, and the node must stop.
/// Dropping the pipeline finishes the queued work and joins the thread.
pub struct SyncPipeline {
    shared: Arc<Shared>,
    /// The size of each buffer lent.
    batch_buffer: usize,
    /// The buffer lent to the core for the next batch.
    lent: Vec<u8>,
    thread: Option<JoinHandle<()>>,
    /// The newest batch reported to the driver.
    reported: PersistSeq,
}

impl std::fmt::Debug for SyncPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncPipeline")
            .field("reported", &self.reported)
            .finish_non_exhaustive()
    }
}

impl SyncPipeline {
    /// Moves `log` to a new thread; `wake` is called after each sync.
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub fn start(log: FileLog, wake: Wake) -> std::io::Result<SyncPipeline> {
        Self::with_batch_buffer(log, wake, BATCH_BUFFER)
    }

    /// [`SyncPipeline::start`] lending the core buffers of `batch_buffer`
    /// bytes (at least its `MIN_PERSIST_BUFFER` for the values it holds:
    /// one record of the largest value).
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub fn with_batch_buffer(log: FileLog, wake: Wake, batch_buffer: usize) -> std::io::Result<SyncPipeline> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stats: log.stats(),
                ..State::default()
            }),
            work: Condvar::new(),
            room: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("paxos-sync".into())
                .spawn(move || run(log, &shared, &wake))?
        };
        Ok(SyncPipeline {
            shared,
            batch_buffer,
            lent: vec![0; batch_buffer],
            thread: Some(thread),
            reported: PersistSeq(0),
        })
    }

    /// Replaces the log by `snapshot` and `checkpoint` once every batch
    /// queued before has been written ([`FileLog::compact`]).
    ///
    /// # Errors
    ///
    /// The pipeline stopped on an earlier error.
    pub fn compact(&mut self, snapshot: Vec<u8>, checkpoint: Vec<u8>) -> Result<(), StorageError> {
        self.queue(Job::Compact { snapshot, checkpoint })
    }

    /// The log's counters as of the last finished job.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Waits until everything queued is written and synced. For tests and
    /// a graceful stop.
    ///
    /// # Errors
    ///
    /// The error that stopped the thread.
    pub fn wait_idle(&mut self) -> Result<(), StorageError> {
        let mut state = self.shared.lock();
        while state.queued > 0 && !state.failed {
            state = self.shared.room.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        Self::check(&mut state)
    }

    fn check(state: &mut State) -> Result<(), StorageError> {
        match state.error.take() {
            Some(e) => Err(e),
            None if state.failed => Err(StorageError::Poisoned),
            None => Ok(()),
        }
    }

    fn queue(&mut self, job: Job) -> Result<(), StorageError> {
        let mut state = self.shared.lock();
        while state.queued > MAX_QUEUED_BYTES && !state.failed {
            state = self.shared.room.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        Self::check(&mut state)?;
        state.queued += job.len();
        state.jobs.push_back(job);
        self.shared.work.notify_one();
        Ok(())
    }
}

impl driver::Storage for SyncPipeline {
    type Error = StorageError;

    fn buffer(&mut self) -> &mut [u8] {
        &mut self.lent
    }

    fn append(&mut self, seq: PersistSeq, len: usize) -> Result<(), StorageError> {
        let next = self
            .shared
            .lock()
            .free
            .pop()
            .unwrap_or_else(|| vec![0; self.batch_buffer]);
        let batch = std::mem::replace(&mut self.lent, next);
        let len = len.min(batch.len());
        self.queue(Job::Batch(seq, batch, len))
    }

    fn sync(&mut self) -> Result<Option<PersistSeq>, StorageError> {
        let mut state = self.shared.lock();
        Self::check(&mut state)?;
        if state.durable > self.reported {
            self.reported = state.durable;
            return Ok(Some(state.durable));
        }
        Ok(None)
    }
}

impl Drop for SyncPipeline {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sync thread: write every queued job, sync once, publish, repeat.
fn run(mut log: FileLog, shared: &Shared, wake: &Wake) {
    let mut group = VecDeque::new();
    loop {
        {
            let mut state = shared.lock();
            while state.jobs.is_empty() && !state.stopping {
                state = shared.work.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.jobs.is_empty() {
                return;
            }
            mem::swap(&mut group, &mut state.jobs);
        }
        let bytes: usize = group.iter().map(Job::len).sum();
        let _span = tracing::trace_span!("sync", jobs = group.len(), bytes).entered();
        let mut last = None;
        let mut free = Vec::new();
        let result = group.drain(..).try_for_each(|job| match job {
            Job::Batch(seq, batch, len) => {
                let written = log.append(batch.get(..len).unwrap_or_default());
                last = Some(seq);
                free.push(batch);
                written
            }
            Job::Compact { snapshot, checkpoint } => log.compact(&snapshot, &checkpoint),
        });
        let result = result.and_then(|()| log.sync());
        {
            let mut state = shared.lock();
            state.queued = state.queued.saturating_sub(bytes);
            state.stats = log.stats();
            free.truncate(FREE_BUFFERS.saturating_sub(state.free.len()));
            state.free.append(&mut free);
            match result {
                Ok(()) => {
                    if let Some(seq) = last {
                        state.durable = state.durable.max(seq);
                    }
                }
                Err(e) => {
                    tracing::error!("storage failed, the node must stop: {e}");
                    state.error = Some(e);
                    state.failed = true;
                }
            }
            shared.room.notify_all();
        }
        wake();
        if shared.lock().failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::driver::Storage;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Writes `bytes` into the lent buffer and appends them as batch `seq`.
    fn put(p: &mut SyncPipeline, seq: u64, bytes: &[u8]) -> Result<(), StorageError> {
        p.buffer()[..bytes.len()].copy_from_slice(bytes);
        p.append(PersistSeq(seq), bytes.len())
    }

    fn pipeline(dir: &std::path::Path) -> (SyncPipeline, Arc<AtomicUsize>) {
        let (log, _) = FileLog::open(dir).unwrap();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let wake: Wake = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (SyncPipeline::start(log, wake).unwrap(), wakes)
    }

    #[test]
    fn batches_become_durable_in_order_and_are_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, wakes) = pipeline(dir.path());
        for i in 1..=100u64 {
            put(&mut p, i, &i.to_le_bytes()).unwrap();
        }
        p.wait_idle().unwrap();
        // The wake-up comes right after the sync is published.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while wakes.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < end, "the driver was never woken");
            std::thread::yield_now();
        }
        assert_eq!(p.sync().unwrap(), Some(PersistSeq(100)));
        assert_eq!(p.sync().unwrap(), None, "reported once");
        let syncs = p.stats().syncs;
        assert!((1..=100).contains(&syncs), "{syncs} syncs for 100 batches");
        drop(p);
        let (_, recovered) = FileLog::open(dir.path()).unwrap();
        let expected: Vec<Vec<u8>> = (1..=100u64).map(|i| i.to_le_bytes().to_vec()).collect();
        assert_eq!(recovered.batches, expected);
    }

    #[test]
    fn dropping_the_pipeline_writes_what_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, _) = pipeline(dir.path());
        put(&mut p, 1, b"one").unwrap();
        put(&mut p, 2, b"two").unwrap();
        drop(p);
        let (_, recovered) = FileLog::open(dir.path()).unwrap();
        assert_eq!(recovered.batches, vec![b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn a_compaction_covers_the_batches_queued_before_it_and_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, _) = pipeline(dir.path());
        put(&mut p, 1, b"old").unwrap();
        p.compact(b"state".to_vec(), b"checkpoint".to_vec()).unwrap();
        put(&mut p, 2, b"new").unwrap();
        p.wait_idle().unwrap();
        assert_eq!(p.sync().unwrap(), Some(PersistSeq(2)));
        drop(p);
        let (_, recovered) = FileLog::open(dir.path()).unwrap();
        assert_eq!(recovered.snapshot.as_deref(), Some(&b"state"[..]));
        assert_eq!(recovered.batches, vec![b"checkpoint".to_vec(), b"new".to_vec()]);
    }

    #[test]
    fn a_failed_job_stops_the_pipeline_and_confirms_nothing_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, _) = pipeline(dir.path());
        put(&mut p, 1, b"fine").unwrap();
        p.wait_idle().unwrap();
        assert_eq!(p.sync().unwrap(), Some(PersistSeq(1)));
        // A job the log refuses stops the pipeline.
        let huge = vec![0u8; super::super::MAX_BATCH_LEN + 1];
        p.compact(Vec::new(), huge).unwrap();
        assert!(matches!(p.wait_idle(), Err(StorageError::BatchTooLarge { .. })));
        assert!(matches!(p.sync(), Err(StorageError::Poisoned)));
        assert!(matches!(put(&mut p, 3, b"later"), Err(StorageError::Poisoned)));
    }
}
