//! Settled objects are held compressed.
//!
//! Most of a control plane's objects are written a few times while they
//! come up and then rarely again. So a record's body starts plain (a key
//! written often is never compressed in between), and a background thread
//! compresses the ones that have not changed for a while with a dictionary
//! trained on the store's own objects (see `jsonpack`). Reads decompress.
//!
//! Dictionaries live only in memory: the database keeps plain JSON, and a
//! restart trains a new one. A record keeps the dictionary it was
//! compressed with; a newer dictionary (trained as the store grows) is used
//! for later packing, and records packed with an older one are packed again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use jsonpack::{Packer as Compressor, Trainer};

use crate::record::Record;
use crate::{read, write, Shared};

/// How often the packer looks for settled records; a record not written
/// for a whole interval counts as settled.
const INTERVAL: Duration = Duration::from_secs(2);

/// Most records packed in one pass, so one pass never holds many
/// compressed copies waiting to be swapped in, nor the CPU for long.
const PASS: usize = 4_096;

/// Records swapped in under one hold of the write lock, so the writer
/// never waits long for the packer.
const SWAP: usize = 256;

/// The background thread that packs settled records.
pub(crate) struct Packer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Packer {
    /// Holds the store weakly, so a store dropped without `close` still goes.
    pub(crate) fn spawn(shared: Weak<Shared>) -> std::io::Result<Packer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("store-packer".into())
            .spawn(move || run(&shared, &flag))?;
        Ok(Packer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

struct State {
    trainer: Trainer,
    compressor: Compressor,
    /// The store's revision at the last pass: a record at or below it has
    /// not changed for a whole interval.
    previous: u64,
    /// The revision at the last pass that found nothing left to pack.
    idle_at: Option<u64>,
}

fn run(shared: &Weak<Shared>, stop: &AtomicBool) {
    let mut state = State {
        trainer: Trainer::default(),
        compressor: Compressor::default(),
        previous: 0,
        idle_at: None,
    };
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(INTERVAL);
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Some(shared) = shared.upgrade() else {
            break;
        };
        let revision = read(&shared.state).revision;
        let settled = std::mem::replace(&mut state.previous, revision);
        if state.idle_at == Some(revision) {
            continue;
        }
        // Batch after batch until what has settled is packed: one batch per
        // interval fell far behind a store that grows by tens of thousands
        // of objects (each new dictionary repacks them all), and the plain
        // copies are most of its memory. Resting as long as each batch took
        // keeps the packer to half a core while the controllers are busy.
        // Bounded by what the store holds, so records that keep failing
        // to pack cannot keep it going.
        let batches = read(&shared.state).objects.len() / PASS + 1;
        for _ in 0..batches {
            let started = std::time::Instant::now();
            if pass(&shared, &mut state, settled, revision) == Pass::Done
                || stop.load(Ordering::Acquire)
            {
                break;
            }
            std::thread::park_timeout(started.elapsed().max(MIN_REST));
        }
    }
}

/// The shortest rest between two batches of one pass.
const MIN_REST: Duration = Duration::from_millis(5);

/// Whether a batch found more to pack than it could take.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    Full,
    Done,
}

fn pass(shared: &Shared, state: &mut State, settled: u64, revision: u64) -> Pass {
    let objects = read(&shared.state).objects.len();
    if state.trainer.due(objects) {
        train(shared, state, settled, objects);
    }
    let Some(dictionary) = state.trainer.dictionary().cloned() else {
        return Pass::Done;
    };
    let candidates: Vec<Arc<Record>> = read(&shared.state)
        .objects
        .values()
        .filter(|r| {
            r.mod_revision <= settled
                && r.body.len() >= jsonpack::MIN_PACKED
                && r.body.dictionary_id() != Some(dictionary.id())
        })
        .take(PASS)
        .cloned()
        .collect();
    if candidates.is_empty() {
        state.idle_at = Some(revision);
        return Pass::Done;
    }
    state.idle_at = None;
    let full = if candidates.len() == PASS {
        Pass::Full
    } else {
        Pass::Done
    };
    let mut packed = Vec::with_capacity(candidates.len());
    for record in candidates {
        let body = record
            .body
            .json()
            .and_then(|plain| state.compressor.pack(&dictionary, plain));
        match body {
            Ok(body) => packed.push((record, body)),
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "cannot compress a stored object")
            }
        }
    }
    for chunk in packed.chunks(SWAP) {
        let mut guard = write(&shared.state);
        for (record, body) in chunk {
            let Some(current) = guard.objects.get_mut(&record.key) else {
                continue;
            };
            // Written again meanwhile: the newer record is packed later, if it settles.
            if !Arc::ptr_eq(current, record) {
                continue;
            }
            *current = Arc::new(Record {
                key: record.key.clone(),
                create_revision: record.create_revision,
                mod_revision: record.mod_revision,
                meta: record.meta.clone(),
                body: body.clone(),
            });
        }
    }
    full
}

/// Trains a dictionary on a spread of the settled objects.
fn train(shared: &Shared, state: &mut State, settled: u64, objects: usize) {
    let sample: Vec<Arc<Record>> = {
        let guard = read(&shared.state);
        let step = (objects / Trainer::SAMPLES).max(1);
        guard
            .objects
            .values()
            .filter(|r| r.mod_revision <= settled && r.body.len() >= jsonpack::MIN_PACKED)
            .step_by(step)
            .take(Trainer::SAMPLES)
            .cloned()
            .collect()
    };
    let mut bytes = 0;
    let mut samples: Vec<Bytes> = Vec::with_capacity(sample.len());
    for record in sample {
        let Ok(json) = record.body.json() else {
            continue;
        };
        bytes += json.len();
        samples.push(json);
        if bytes >= Trainer::SAMPLE_BYTES {
            break;
        }
    }
    let started = std::time::Instant::now();
    if let Some(dictionary) = state.trainer.train(objects, &samples) {
        tracing::debug!(
            id = dictionary.id(),
            objects,
            samples = samples.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "trained a compression dictionary"
        );
    }
}

/// How much memory the store's objects take, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub objects: usize,
    pub packed: usize,
    /// Bytes of object bodies as held, compressed or not.
    pub body_bytes: usize,
}

pub(crate) fn footprint(objects: &std::collections::BTreeMap<Arc<str>, Arc<Record>>) -> Footprint {
    let mut out = Footprint::default();
    for record in objects.values() {
        out.objects += 1;
        out.body_bytes += record.body.size();
        if record.body.is_packed() {
            out.packed += 1;
        }
    }
    out
}
