//! Settled objects are held compressed.
//!
//! Most of a control plane's objects are written a few times while they
//! come up and then rarely again, and their JSON repeats the same keys and
//! shapes object after object. So a record's body starts plain (a key
//! written often is never compressed in between), and a background thread
//! compresses the ones that have not changed for a while with zstd and a
//! dictionary trained on the store's own objects: about a tenth of their
//! size, where zstd without a dictionary gets to a third. Reads decompress.
//!
//! Dictionaries live only in memory: the database keeps plain JSON, and a
//! restart trains a new one. A record keeps the dictionary it was
//! compressed with; a newer dictionary (trained as the store grows) is used
//! for later packing, and records packed with an older one are packed again.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use zstd::zstd_safe::{CCtx, CDict, DCtx, DDict};

use crate::record::Record;
use crate::{read, write, Shared};

/// A body shorter than this stays plain: zstd's frame header and the
/// record's bookkeeping would eat what compressing it saves.
const MIN_PACKED: usize = 256;

/// How often the packer looks for settled records; a record not written
/// for one whole interval counts as settled.
const INTERVAL: Duration = Duration::from_secs(1);

/// Most records packed in one pass, so one pass never holds many
/// compressed copies waiting to be swapped in.
const PASS: usize = 8_192;

/// The first dictionary is trained once this many records could use one.
const FIRST_TRAINING: usize = 256;

/// A new dictionary is trained each time the store has grown this many
/// times over since the last one, up to [`LAST_TRAINING`] objects.
const GROWTH: usize = 4;
const LAST_TRAINING: usize = 1 << 20;

/// Samples a dictionary is trained on: enough for the shapes to repeat,
/// few enough that training takes well under a second.
const SAMPLES: usize = 1_000;
const SAMPLE_BYTES: usize = 2 << 20;
const DICTIONARY_BYTES: usize = 32 << 10;

/// zstd's level: the fast end, since the dictionary does most of the work.
const LEVEL: i32 = 3;

/// A record's JSON, plain or compressed.
#[derive(Debug)]
pub(crate) enum Body {
    Plain(Bytes),
    Packed {
        dictionary: Arc<Dictionary>,
        bytes: Box<[u8]>,
        /// The plain length, to decompress into a buffer of the right size.
        len: u32,
    },
}

impl Body {
    pub(crate) fn json(&self) -> Result<Bytes, String> {
        match self {
            Body::Plain(bytes) => Ok(bytes.clone()),
            Body::Packed {
                dictionary,
                bytes,
                len,
            } => dictionary.decompress(bytes, *len as usize).map(Bytes::from),
        }
    }

    pub(crate) fn size(&self) -> usize {
        match self {
            Body::Plain(bytes) => bytes.len(),
            Body::Packed { bytes, .. } => bytes.len(),
        }
    }

    fn dictionary_id(&self) -> Option<u32> {
        match self {
            Body::Plain(_) => None,
            Body::Packed { dictionary, .. } => Some(dictionary.id),
        }
    }
}

/// One trained dictionary, ready for both directions.
pub(crate) struct Dictionary {
    id: u32,
    decoder: DDict<'static>,
    encoder: CDict<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("id", &self.id).finish()
    }
}

thread_local! {
    /// A decompression context per thread: creating one per read would
    /// allocate about 100 KiB each time.
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

fn zstd_error(code: usize) -> String {
    zstd::zstd_safe::get_error_name(code).to_string()
}

impl Dictionary {
    fn train(id: u32, samples: &[Bytes]) -> Option<Dictionary> {
        // zstd wants many times the dictionary's size in samples; a small
        // store gets a small dictionary rather than none.
        let total: usize = samples.iter().map(Bytes::len).sum();
        let size = (total / 16).clamp(1 << 10, DICTIONARY_BYTES);
        let raw = zstd::dict::from_samples(samples, size)
            .inspect_err(|e| tracing::debug!(error = %e, "cannot train a compression dictionary"))
            .ok()?;
        Some(Dictionary {
            id,
            decoder: DDict::create(&raw),
            encoder: CDict::create(&raw, LEVEL),
        })
    }

    fn compress(&self, context: &mut CCtx<'_>, plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()));
        context
            .compress_using_cdict(&mut out, plain, &self.encoder)
            .map_err(zstd_error)?;
        out.shrink_to_fit();
        Ok(out)
    }

    fn decompress(&self, packed: &[u8], len: usize) -> Result<Vec<u8>, String> {
        DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let context = cell.get_or_insert_with(DCtx::create);
            let mut out = Vec::with_capacity(len);
            context
                .decompress_using_ddict(&mut out, packed, &self.decoder)
                .map_err(zstd_error)?;
            if out.len() != len {
                return Err(format!("decompressed {} bytes, expected {len}", out.len()));
            }
            Ok(out)
        })
    }
}

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
    dictionary: Option<Arc<Dictionary>>,
    /// How many objects the store held when the current dictionary was trained.
    trained_at: usize,
    context: CCtx<'static>,
    /// The revision every record at or below which has not changed for an
    /// interval, when last looked.
    settled: u64,
    /// The revision at the last pass that found nothing left to pack.
    idle_at: Option<u64>,
}

fn run(shared: &Weak<Shared>, stop: &AtomicBool) {
    let mut state = State {
        dictionary: None,
        trained_at: 0,
        context: CCtx::create(),
        settled: 0,
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
        // Records written after this revision are not settled yet; those at
        // or below the revision of the previous pass have had an interval.
        let revision = read(&shared.state).revision;
        let settled = std::mem::replace(&mut state.settled, revision);
        if state.idle_at == Some(revision) {
            continue;
        }
        pass(&shared, &mut state, settled, revision);
    }
}

fn pass(shared: &Shared, state: &mut State, settled: u64, revision: u64) {
    let objects = read(&shared.state).objects.len();
    let due = match &state.dictionary {
        None => objects >= FIRST_TRAINING,
        Some(_) => objects >= state.trained_at * GROWTH && state.trained_at < LAST_TRAINING,
    };
    if due {
        train(shared, state, settled, objects);
    }
    let Some(dictionary) = state.dictionary.clone() else {
        return;
    };
    let candidates: Vec<Arc<Record>> = read(&shared.state)
        .objects
        .values()
        .filter(|r| {
            r.mod_revision <= settled
                && r.body.size() >= MIN_PACKED
                && r.body.dictionary_id() != Some(dictionary.id)
        })
        .take(PASS)
        .cloned()
        .collect();
    if candidates.is_empty() {
        state.idle_at = Some(revision);
        return;
    }
    state.idle_at = None;
    let mut packed = Vec::with_capacity(candidates.len());
    for record in candidates {
        let plain = match record.body.json() {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "cannot read a stored object to compress it");
                continue;
            }
        };
        match dictionary.compress(&mut state.context, &plain) {
            Ok(bytes) => packed.push((record, bytes, plain.len())),
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "cannot compress a stored object")
            }
        }
    }
    let mut guard = write(&shared.state);
    for (record, bytes, len) in packed {
        let Some(current) = guard.objects.get_mut(&record.key) else {
            continue;
        };
        // Written again meanwhile: the newer record is packed later, if it settles.
        if !Arc::ptr_eq(current, &record) {
            continue;
        }
        *current = Arc::new(Record {
            key: record.key.clone(),
            create_revision: record.create_revision,
            mod_revision: record.mod_revision,
            meta: record.meta.clone(),
            body: Body::Packed {
                dictionary: dictionary.clone(),
                bytes: bytes.into_boxed_slice(),
                len: len as u32,
            },
        });
    }
}

/// Trains a dictionary on a spread of the settled objects.
fn train(shared: &Shared, state: &mut State, settled: u64, objects: usize) {
    let sample: Vec<Arc<Record>> = {
        let guard = read(&shared.state);
        let step = (objects / SAMPLES).max(1);
        guard
            .objects
            .values()
            .filter(|r| r.mod_revision <= settled && r.body.size() >= MIN_PACKED)
            .step_by(step)
            .take(SAMPLES)
            .cloned()
            .collect()
    };
    if sample.len() < FIRST_TRAINING / 4 {
        return;
    }
    let mut bytes = 0;
    let mut samples = Vec::with_capacity(sample.len());
    for record in sample {
        let Ok(json) = record.body.json() else {
            continue;
        };
        bytes += json.len();
        samples.push(json);
        if bytes >= SAMPLE_BYTES {
            break;
        }
    }
    let id = state.dictionary.as_ref().map_or(1, |d| d.id + 1);
    let started = std::time::Instant::now();
    if let Some(dictionary) = Dictionary::train(id, &samples) {
        tracing::debug!(
            id,
            objects,
            samples = samples.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "trained a compression dictionary"
        );
        state.dictionary = Some(Arc::new(dictionary));
        state.trained_at = objects;
    } else {
        // Too uniform or too few to train on; tried again once the store grows.
        state.trained_at = objects.max(1);
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

pub(crate) fn footprint(objects: &std::collections::BTreeMap<Box<str>, Arc<Record>>) -> Footprint {
    let mut out = Footprint::default();
    for record in objects.values() {
        out.objects += 1;
        out.body_bytes += record.body.size();
        if record.is_packed() {
            out.packed += 1;
        }
    }
    out
}
