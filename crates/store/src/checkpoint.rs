//! Checkpoints: copying the WAL back into the database file.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, on the writer's connection, so every so often one batch of API
//! writes waited for megabytes of page copies and an fsync of the database
//! file, which is what set the tail latency of writes. Here the writer turns
//! automatic checkpoints off and pokes this thread after each commit; the
//! thread runs PASSIVE checkpoints on its own connection, beside the writer.
//!
//! A PASSIVE checkpoint never blocks the writer, but under continuous writes it
//! may never catch up with the end of the WAL, and SQLite only starts the WAL
//! over once it has. So the writer also checks the WAL's size after each batch
//! and, past [`WAL_LIMIT_BYTES`], truncates it itself: a rare pause instead of
//! an ever-growing file.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How long commits accumulate before the background checkpoint copies them,
/// so a burst of writes costs one checkpoint rather than one per batch.
const DELAY: Duration = Duration::from_millis(200);

/// WAL size past which the writer truncates the WAL itself.
pub(crate) const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The background checkpoint thread; dropping it (after the writer stops)
/// ends the thread.
pub(crate) struct Checkpointer {
    wake: SyncSender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    wal: PathBuf,
}

impl Checkpointer {
    pub(crate) fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        // One pending wake-up is enough: the checkpoint covers every commit before it.
        let (wake, rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| {
                StoreError::CommitFailed(format!("cannot start the checkpoint thread: {e}"))
            })?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Checkpointer {
            wake,
            thread: Some(thread),
            wal: PathBuf::from(wal),
        })
    }

    /// Tells the thread that there are new commits to copy.
    pub(crate) fn poke(&self) {
        let _ = self.wake.try_send(());
    }

    /// True when the WAL has grown past [`WAL_LIMIT_BYTES`].
    pub(crate) fn wal_too_big(&self) -> bool {
        std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the loop; the join waits for a checkpoint in progress.
        let (closed, _) = mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.wake, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, wake: Receiver<()>) {
    while wake.recv().is_ok() {
        std::thread::sleep(DELAY);
        while wake.try_recv().is_ok() {}
        if let Err(err) = passive(&conn) {
            tracing::warn!(error = %err, "background checkpoint failed; the next one retries");
        }
    }
}

fn passive(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Copies the whole WAL back and truncates it, on the writer's connection.
pub(crate) fn truncate(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}
