//! Online backup and restore of a store's database.
//!
//! A backup is SQLite's online backup API run from its own connection: it
//! copies one consistent snapshot (every transaction committed before it
//! began, none after) while the store keeps serving, since WAL mode lets a
//! reader run beside the writer.
//!
//! A restore installs a snapshot as a data directory's database, and moves
//! both its revision and its compact revision past every revision the
//! replaced database (or the snapshot) had handed out. Any client resuming a
//! watch from a revision it saw before the restore is then told the
//! revision is compacted (410 Gone) and lists again, instead of being fed a
//! history that no longer matches what it saw.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The newest revision in the snapshot.
    pub revision: u64,
    /// How many objects it holds.
    pub objects: u64,
}

fn revision_of(conn: &Connection) -> Result<u64, StoreError> {
    let revision: Option<i64> = conn
        .query_row(crate::sqlite::MAX_REVISION, [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(revision.unwrap_or(0) as u64)
}

fn describe(conn: &Connection) -> Result<Snapshot, StoreError> {
    let objects: i64 = conn.query_row("SELECT COUNT(*) FROM objects", [], |r| r.get(0))?;
    Ok(Snapshot {
        revision: revision_of(conn)?,
        objects: objects as u64,
    })
}

/// Copies the database at `db` into a new file `to`, consistently, while
/// its store may be serving.
pub fn backup(db: &Path, to: &Path) -> Result<Snapshot, StoreError> {
    if !db.exists() {
        return Err(StoreError::CommitFailed(format!(
            "there is no database at {}",
            db.display()
        )));
    }
    let source = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The store's writer may hold the lock for a batch; wait for it.
    source.busy_timeout(Duration::from_secs(30))?;
    crate::sqlite::restrict_file(to)?;
    let mut target = Connection::open(to)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
        // All pages in one step: a step holds a read transaction, so one
        // step is one snapshot even while the writer commits.
        backup.step(-1)?;
    }
    describe(&target)
}

/// Installs the snapshot `from` as the database at `db` (which must not be
/// open), with its revisions moved past any the old database handed out.
pub fn restore(from: &Path, db: &Path) -> Result<Snapshot, StoreError> {
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let snapshot = describe(&source)?;
    let previous = if db.exists() {
        revision_of(&Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)?
    } else {
        0
    };
    // Replace the whole database, WAL included: a WAL left beside a new
    // main file would be replayed into it.
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(Path::new(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Permissions {
                    path: name.into(),
                    source,
                })
            }
        }
    }
    crate::sqlite::restrict_file(db)?;
    let mut target = Connection::open(db)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
        backup.step(-1)?;
    }
    let base = snapshot.revision.max(previous) + 1;
    let tx = target.transaction()?;
    tx.execute(
        crate::sqlite::SET_META,
        rusqlite::params!["revision", base as i64],
    )?;
    tx.execute(
        crate::sqlite::SET_META,
        rusqlite::params!["compact_revision", base as i64],
    )?;
    tx.commit()?;
    Ok(Snapshot {
        revision: base,
        objects: snapshot.objects,
    })
}
