//! The store's error type.

/// What can go wrong in the store. `AlreadyExists`, `NotFound`, `Conflict` and
/// `Compacted` are expected outcomes the caller turns into API responses; the
/// rest are failures of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object already exists")]
    AlreadyExists,
    #[error("object not found")]
    NotFound,
    /// The caller's precondition revision is stale.
    #[error("object has been modified; the stored revision is {current}")]
    Conflict { current: u64 },
    /// The requested start revision has been compacted away.
    #[error("revision is too old: events at or below {compact_revision} have been compacted; list again")]
    Compacted { compact_revision: u64 },
    /// The transaction holding this write failed; the write did not happen.
    #[error("cannot commit the write: {0}")]
    CommitFailed(String),
    /// The disk (or the file size limit) left no room for the write, which
    /// did not happen; reads go on, and writes work again once there is room.
    #[error("cannot commit the write: the disk holding the store is full; nothing was written, reads still work, and writes will succeed once space is freed")]
    DiskFull,
    #[error("store is shut down")]
    Closed,
    #[error(
        "cannot access the database: {0}; check the data directory's disk space and permissions"
    )]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot restrict the permissions of {path} to its owner: {source}")]
    Permissions {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decode a stored object under {key}: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("cannot decompress the stored object under {key}: {message}")]
    Unpack { key: String, message: String },
    /// An encryption key that cannot be used (wrong size, bad name).
    #[error("cannot use encryption key {name:?}: {message}")]
    InvalidKey { name: String, message: String },
    #[error("cannot encrypt the object under {key}: {message}")]
    Encrypt { key: String, message: String },
    /// A sealed value that the configured keys do not open.
    #[error("cannot decrypt the object under {key}: {message}")]
    Decrypt { key: String, message: String },
}

impl StoreError {
    /// The error a failed commit is reported as, to each write it held.
    pub(crate) fn of_commit(err: &StoreError) -> StoreError {
        match err {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull =>
            {
                StoreError::DiskFull
            }
            other => StoreError::CommitFailed(other.to_string()),
        }
    }

    /// A short stable label for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::AlreadyExists => "already_exists",
            StoreError::NotFound => "not_found",
            StoreError::Conflict { .. } => "conflict",
            StoreError::Compacted { .. } => "compacted",
            StoreError::Closed => "closed",
            StoreError::CommitFailed(_) => "commit_failed",
            StoreError::DiskFull => "disk_full",
            StoreError::Sqlite(_) => "sqlite",
            StoreError::Permissions { .. } => "permissions",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Unpack { .. } => "unpack",
            StoreError::InvalidKey { .. } => "invalid_key",
            StoreError::Encrypt { .. } => "encrypt",
            StoreError::Decrypt { .. } => "decrypt",
        }
    }
}
