//! JSON documents held compressed in memory, with a dictionary trained on
//! documents like them.
//!
//! A control plane's objects repeat the same keys and shapes object after
//! object, and most are small: zstd alone gets one to about a third of its
//! size, zstd with a dictionary trained on a sample of its peers to about a
//! tenth. The store keeps its settled objects this way, and the
//! controllers' caches theirs.
//!
//! Layout:
//! - [`Dictionary`]: trained from samples, shared by everything packed with it.
//! - [`Packer`]: the compression context of one thread.
//! - [`Body`]: one document, plain or packed; reading it back decompresses.
//!
//! ```text
//!  samples ──train──▶ Dictionary ──▶ Packer::pack(plain) ──▶ Body::Packed ──json()──▶ plain
//! ```
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use zstd::zstd_safe::{CCtx, CDict, DCtx, DDict};

/// A body shorter than this stays plain: zstd's frame header and the
/// bookkeeping around it would eat what compressing saves.
pub const MIN_PACKED: usize = 256;

/// The largest dictionary trained.
const DICTIONARY_BYTES: usize = 32 << 10;

/// zstd's level: the fastest, since the dictionary does most of the work,
/// and its tables are the smallest (level 3's made each dictionary's
/// compression side about 800 KiB, for one dictionary per cached kind).
const LEVEL: i32 = 1;

/// Why a body could not be packed or read back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot compress a document: {0}")]
    Compress(String),
    #[error("cannot decompress a document: {0}")]
    Decompress(String),
}

fn zstd_error(code: usize) -> String {
    zstd::zstd_safe::get_error_name(code).to_string()
}

/// One trained dictionary, ready for both directions.
pub struct Dictionary {
    id: u32,
    decoder: DDict<'static>,
    encoder: CDict<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("id", &self.id).finish()
    }
}

impl Dictionary {
    /// Trains a dictionary on `samples`; `None` when zstd finds too little
    /// to learn from (too few samples, or all alike). `id` tells
    /// dictionaries apart, for a caller that trains anew as it grows.
    pub fn train<S: AsRef<[u8]>>(id: u32, samples: &[S]) -> Option<Arc<Dictionary>> {
        // zstd wants many times the dictionary's size in samples; few
        // samples get a small dictionary rather than none.
        let total: usize = samples.iter().map(|s| s.as_ref().len()).sum();
        let size = (total / 16).clamp(1 << 10, DICTIONARY_BYTES);
        let raw = zstd::dict::from_samples(samples, size)
            .inspect_err(|e| tracing::debug!(error = %e, "cannot train a compression dictionary"))
            .ok()?;
        Some(Arc::new(Dictionary {
            id,
            decoder: DDict::create(&raw),
            encoder: CDict::create(&raw, LEVEL),
        }))
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    fn decompress(&self, packed: &[u8], len: usize) -> Result<Vec<u8>, Error> {
        DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let context = cell.get_or_insert_with(DCtx::create);
            let mut out = Vec::with_capacity(len);
            context
                .decompress_using_ddict(&mut out, packed, &self.decoder)
                .map_err(|code| Error::Decompress(zstd_error(code)))?;
            if out.len() != len {
                return Err(Error::Decompress(format!(
                    "got {} bytes, expected {len}",
                    out.len()
                )));
            }
            Ok(out)
        })
    }
}

thread_local! {
    /// A decompression context per thread: creating one per read would
    /// allocate about 100 KiB each time.
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// The compression context of one thread (or one owner).
pub struct Packer {
    context: CCtx<'static>,
}

impl Default for Packer {
    fn default() -> Self {
        Packer {
            context: CCtx::create(),
        }
    }
}

impl Packer {
    /// `plain` compressed with `dictionary`, or plain when it is too short
    /// to be worth it.
    pub fn pack(&mut self, dictionary: &Arc<Dictionary>, plain: Bytes) -> Result<Body, Error> {
        if plain.len() < MIN_PACKED {
            return Ok(Body::Plain(plain));
        }
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()));
        self.context
            .compress_using_cdict(&mut out, &plain, &dictionary.encoder)
            .map_err(|code| Error::Compress(zstd_error(code)))?;
        let len = u32::try_from(plain.len())
            .map_err(|_| Error::Compress(format!("{} bytes is too large", plain.len())))?;
        Ok(Body::Packed {
            dictionary: dictionary.clone(),
            bytes: out.into_boxed_slice(),
            len,
        })
    }
}

/// One JSON document, plain or compressed.
#[derive(Debug, Clone)]
pub enum Body {
    Plain(Bytes),
    Packed {
        dictionary: Arc<Dictionary>,
        bytes: Box<[u8]>,
        /// The plain length, to decompress into a buffer of the right size.
        len: u32,
    },
}

impl Body {
    /// The document as it was given.
    pub fn json(&self) -> Result<Bytes, Error> {
        match self {
            Body::Plain(bytes) => Ok(bytes.clone()),
            Body::Packed {
                dictionary,
                bytes,
                len,
            } => dictionary.decompress(bytes, *len as usize).map(Bytes::from),
        }
    }

    /// Bytes of memory the document takes as held.
    pub fn size(&self) -> usize {
        match self {
            Body::Plain(bytes) => bytes.len(),
            Body::Packed { bytes, .. } => bytes.len(),
        }
    }

    /// The plain document's length.
    pub fn len(&self) -> usize {
        match self {
            Body::Plain(bytes) => bytes.len(),
            Body::Packed { len, .. } => *len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_packed(&self) -> bool {
        matches!(self, Body::Packed { .. })
    }

    /// The dictionary it is packed with, if it is.
    pub fn dictionary_id(&self) -> Option<u32> {
        match self {
            Body::Plain(_) => None,
            Body::Packed { dictionary, .. } => Some(dictionary.id),
        }
    }
}

/// Trains a new dictionary as a collection of documents grows: first at
/// [`Trainer::FIRST`] documents, then each time the collection has grown
/// [`Trainer::GROWTH`] times over, so a dictionary trained on the first
/// few hundred objects of a store is replaced once there are thousands.
#[derive(Debug, Default)]
pub struct Trainer {
    current: Option<Arc<Dictionary>>,
    /// How many documents there were at the last training.
    trained_at: usize,
}

impl Trainer {
    pub const FIRST: usize = 256;
    pub const GROWTH: usize = 4;
    /// No training past this many documents: the shapes are known by then.
    pub const LAST: usize = 1 << 20;
    /// Samples taken for one training: enough for the shapes to repeat,
    /// few enough that training takes well under a second.
    pub const SAMPLES: usize = 1_000;
    pub const SAMPLE_BYTES: usize = 2 << 20;

    pub fn dictionary(&self) -> Option<&Arc<Dictionary>> {
        self.current.as_ref()
    }

    /// Whether a collection of `documents` is due a (new) dictionary.
    pub fn due(&self, documents: usize) -> bool {
        match self.current {
            None => documents >= Self::FIRST && documents >= self.trained_at * Self::GROWTH,
            Some(_) => documents >= self.trained_at * Self::GROWTH && self.trained_at < Self::LAST,
        }
    }

    /// Trains on `samples` from a collection of `documents`; the new
    /// dictionary is used from then on. When zstd cannot train one, the
    /// next try waits for the collection to grow; with too few samples, it
    /// does not.
    pub fn train<S: AsRef<[u8]>>(
        &mut self,
        documents: usize,
        samples: &[S],
    ) -> Option<Arc<Dictionary>> {
        // Too few to learn from yet: tried again at the next chance.
        if samples.len() < Self::FIRST / 4 {
            return None;
        }
        let id = self.current.as_ref().map_or(1, |d| d.id + 1);
        self.trained_at = documents.max(1);
        let dictionary = Dictionary::train(id, samples)?;
        self.current = Some(dictionary.clone());
        Some(dictionary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(i: usize) -> Bytes {
        Bytes::from(
            serde_json::json!({
                "apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource",
                "metadata": {"name": format!("claim-{i}-a"), "uid": format!("00000000-0000-0000-0000-{i:012}"),
                             "labels": {"crossplane.io/composite": format!("claim-{i}")}},
                "spec": {"forProvider": {"fields": {"size": i % 7}}, "deletionPolicy": "Delete"},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"},
                                          {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}]}
            })
            .to_string(),
        )
    }

    #[test]
    fn a_packed_document_reads_back_exactly_and_is_much_smaller() {
        let samples: Vec<Bytes> = (0..400).map(document).collect();
        let mut trainer = Trainer::default();
        assert!(!trainer.due(100));
        assert!(trainer.due(400));
        let dictionary = trainer.train(400, &samples).expect("a dictionary");
        assert!(!trainer.due(800));
        assert!(trainer.due(1600));
        let mut packer = Packer::default();
        let plain = document(1234);
        let body = packer.pack(&dictionary, plain.clone()).expect("pack");
        assert!(body.is_packed());
        assert_eq!(body.json().expect("unpack"), plain);
        assert_eq!(body.len(), plain.len());
        assert!(
            body.size() * 4 < plain.len(),
            "{} of {}",
            body.size(),
            plain.len()
        );
        // Too short to be worth it.
        let short = Bytes::from_static(b"{\"a\":1}");
        assert!(!packer.pack(&dictionary, short.clone()).unwrap().is_packed());
    }
}
