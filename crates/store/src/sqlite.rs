//! The SQL dialect: the schema and every statement the store runs, in one place.
//!
//! Two tables instead of kine's single log table: `objects` holds the current
//! state keyed by name, so listing 40k objects or loading them at start-up is
//! one sequential scan, and `events` is the append-only change log (row id =
//! revision) that watches resume from and compaction trims.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;

use crate::record::{Event, EventType, Meta, Record};
use crate::seal::{self, Sealer};
use crate::{FieldsFn, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    value TEXT NOT NULL,
    prev TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

const UPSERT_OBJECT: &str =
    "INSERT INTO objects (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision";
const DELETE_OBJECT: &str = "DELETE FROM objects WHERE key = ?1";
const INSERT_EVENT: &str =
    "INSERT INTO events (revision, key, type, value, prev) VALUES (?1, ?2, ?3, ?4, ?5)";
/// Databases written before events kept the labels and fields of the state
/// they replaced get the column (empty for their old events).
const HAS_PREV: &str = "SELECT prev FROM events LIMIT 0";
const ADD_PREV: &str = "ALTER TABLE events ADD COLUMN prev TEXT";
const SELECT_OBJECTS: &str = "SELECT key, value, create_revision, mod_revision FROM objects";
pub(crate) const MAX_REVISION: &str = "SELECT MAX(m) FROM (SELECT MAX(revision) AS m FROM events UNION ALL SELECT MAX(mod_revision) FROM objects UNION ALL SELECT value FROM meta WHERE name = 'revision')";
const COMPACT_REVISION: &str = "SELECT value FROM meta WHERE name = 'compact_revision'";
pub(crate) const SET_META: &str = "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value";
const COMPACT_BATCH: &str = "DELETE FROM events WHERE revision IN (SELECT revision FROM events WHERE revision <= ?1 ORDER BY revision LIMIT ?2)";
/// The rows of each table under a prefix, for re-sealing them.
const OBJECTS_UNDER: &str = "SELECT key, value FROM objects WHERE substr(key, 1, ?2) = ?1";
const EVENTS_UNDER: &str = "SELECT revision, key, value FROM events WHERE substr(key, 1, ?2) = ?1";
const SET_OBJECT_VALUE: &str = "UPDATE objects SET value = ?2 WHERE key = ?1";
const SET_EVENT_VALUE: &str = "UPDATE events SET value = ?2 WHERE revision = ?1";
const EVENTS_SINCE: &str = "SELECT revision, key, type, value, prev FROM events WHERE revision > ?1 AND revision < ?2 AND key >= ?3 ORDER BY revision";

/// Rows deleted per compaction transaction, so compaction never holds the
/// write lock long enough to stall API writes.
pub(crate) const COMPACT_BATCH_ROWS: i64 = 5_000;

/// Opens the single read-write connection, creating the schema.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    // The database holds Secrets. Created (or narrowed) to 0600 before SQLite
    // opens it, since SQLite gives the -wal and -shm files it creates the
    // main file's mode.
    restrict(path, true)?;
    let conn = Connection::open(path)?;
    // WAL lets the reader connection run beside the writer; NORMAL syncs the
    // WAL at checkpoints only, which keeps every committed transaction across
    // a process crash (kill -9), though not across an OS crash or power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoints run beside the writer (see `checkpoint`), not inside its commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.execute_batch(SCHEMA)?;
    if conn.prepare(HAS_PREV).is_err() {
        conn.execute_batch(ADD_PREV)?;
    }
    // Files left by an older version that did not restrict them.
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        restrict(Path::new(&name), false)?;
    }
    Ok(conn)
}

/// Makes `path` readable and writable by its owner only, creating it (empty)
/// when `create` is set and it does not exist.
fn restrict(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |source| StoreError::Permissions {
        path: path.to_path_buf(),
        source,
    };
    if create {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => Ok(()),
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

/// Creates `path` (or narrows it) to mode 0600, for a database file about
/// to be written.
pub(crate) fn restrict_file(path: &Path) -> Result<(), StoreError> {
    restrict(path, true)
}

/// Opens a read-only connection for history reads.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    Ok(conn)
}

/// What is on disk when the store opens.
pub(crate) struct Loaded {
    pub objects: BTreeMap<Arc<str>, Arc<Record>>,
    pub revision: u64,
    pub compact_revision: u64,
}

/// A record from its stored text: parsed once, for its extract.
fn record(
    fields: &FieldsFn,
    key: String,
    text: String,
    create_revision: u64,
    mod_revision: u64,
) -> Result<Record, StoreError> {
    let value: Value = serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
        key: key.clone(),
        source,
    })?;
    let meta = Meta::of(&value, fields(&key, &value));
    Ok(Record::new(
        key.into(),
        create_revision,
        mod_revision,
        Arc::new(meta),
        Bytes::from(text),
    ))
}

/// Loads every object, the current revision and the compact revision.
pub(crate) fn load(
    conn: &Connection,
    fields: &FieldsFn,
    sealer: Option<&Sealer>,
) -> Result<Loaded, StoreError> {
    let mut objects = BTreeMap::new();
    let mut stmt = conn.prepare(SELECT_OBJECTS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let text = seal::open(sealer, &key, row.get_ref(1)?)?;
        let record = record(
            fields,
            key,
            text,
            row.get::<_, i64>(2)? as u64,
            row.get::<_, i64>(3)? as u64,
        )?;
        objects.insert(record.key.clone(), Arc::new(record));
    }
    let revision: Option<i64> = conn.query_row(MAX_REVISION, [], |r| r.get(0))?;
    let compact: Option<i64> = conn
        .query_row(COMPACT_REVISION, [], |r| r.get(0))
        .optional()?;
    Ok(Loaded {
        objects,
        revision: revision.unwrap_or(0) as u64,
        compact_revision: compact.unwrap_or(0) as u64,
    })
}

/// One change to persist.
pub(crate) struct Change<'a> {
    pub revision: u64,
    pub kind: EventType,
    pub record: &'a Record,
    /// The labels and fields of the state it replaced, when they differ
    /// from the new state's (see [`Meta::selectable_json`]).
    pub prev: Option<String>,
}

/// Writes a batch of changes in one transaction.
/// Values under the sealer's prefixes are sealed, once for both tables.
pub(crate) fn commit(
    conn: &mut Connection,
    changes: &[Change<'_>],
    sealer: Option<&Sealer>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(UPSERT_OBJECT)?;
        let mut delete = tx.prepare_cached(DELETE_OBJECT)?;
        let mut event = tx.prepare_cached(INSERT_EVENT)?;
        for change in changes {
            let json = change.record.json()?;
            // Written by this process as UTF-8 JSON: never invalid here.
            let text = std::str::from_utf8(&json).map_err(|e| {
                StoreError::CommitFailed(format!(
                    "the object under {} is not UTF-8: {e}",
                    change.record.key
                ))
            })?;
            let stored = match sealer {
                Some(sealer) => sealer.seal(&change.record.key, text)?,
                None => seal::Stored::Text(text),
            };
            match change.kind {
                EventType::Deleted => {
                    delete.execute(params![&*change.record.key])?;
                }
                _ => {
                    upsert.execute(params![
                        &*change.record.key,
                        stored,
                        change.record.create_revision as i64,
                        change.record.mod_revision as i64
                    ])?;
                }
            }
            event.execute(params![
                change.revision as i64,
                &*change.record.key,
                change.kind.code(),
                stored,
                change.prev
            ])?;
        }
        if let Some(last) = changes.last() {
            // Kept so the revision never goes backwards, even when compaction
            // has removed every event and the newest object was deleted.
            tx.prepare_cached(SET_META)?
                .execute(params!["revision", last.revision as i64])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Deletes events up to `target` in bounded transactions and records the new compact revision.
pub(crate) fn compact_step(conn: &mut Connection, target: u64) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let deleted = tx.execute(COMPACT_BATCH, params![target as i64, COMPACT_BATCH_ROWS])?;
    tx.execute(SET_META, params!["compact_revision", target as i64])?;
    tx.commit()?;
    Ok(deleted as i64 == COMPACT_BATCH_ROWS)
}

/// Reads events with `after < revision < before` whose key starts with `prefix`.
/// At most `limit` events under `prefix`, oldest first; fewer means there
/// are no more before `before`.
pub(crate) fn events_between(
    conn: &Connection,
    fields: &FieldsFn,
    sealer: Option<&Sealer>,
    prefix: &str,
    after: u64,
    before: u64,
    limit: usize,
) -> Result<Vec<Arc<Event>>, StoreError> {
    let mut stmt = conn.prepare_cached(EVENTS_SINCE)?;
    let mut rows = stmt.query(params![after as i64, before as i64, prefix])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if out.len() >= limit {
            break;
        }
        let key: String = row.get(1)?;
        if !key.starts_with(prefix) {
            continue;
        }
        let revision = row.get::<_, i64>(0)? as u64;
        let kind = EventType::from_code(row.get(2)?);
        // Only the revision of the change is known here; events carry the
        // object as it was then, and nothing reads the create revision.
        let text = seal::open(sealer, &key, row.get_ref(3)?)?;
        let record = record(fields, key, text, revision, revision)?;
        let prev_text: Option<String> = row.get(4)?;
        let prev = match (kind, prev_text) {
            (EventType::Modified, Some(text)) => record.meta.with_selectable(&text).map(Arc::new),
            // The same labels and fields as after the change.
            (EventType::Modified, None) => Some(record.meta.clone()),
            _ => None,
        };
        out.push(Arc::new(Event::new(kind, Arc::new(record), prev)));
    }
    Ok(out)
}

/// How many stored values a re-seal rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resealed {
    pub objects: u64,
    pub events: u64,
}

/// Rewrites every value under the sealer's prefixes that is not in the form
/// a write would give it now (plain, or sealed with an older key), in one
/// transaction, then vacuums so the old forms leave the file's free pages.
pub(crate) fn reseal(conn: &mut Connection, sealer: &Sealer) -> Result<Resealed, StoreError> {
    let mut done = Resealed::default();
    let tx = conn.transaction()?;
    for prefix in sealer.prefixes() {
        let width = prefix.chars().count() as i64;
        let stale_objects = stale_rows(&tx, OBJECTS_UNDER, prefix, width, sealer, |row| {
            row.get::<_, String>(0)
        })?;
        for (key, id, text) in stale_objects {
            let stored = sealer.seal(&key, &text)?;
            tx.prepare_cached(SET_OBJECT_VALUE)?
                .execute(params![id, stored])?;
            done.objects += 1;
        }
        let stale_events = stale_rows(&tx, EVENTS_UNDER, prefix, width, sealer, |row| {
            row.get::<_, i64>(0)
        })?;
        for (key, id, text) in stale_events {
            let stored = sealer.seal(&key, &text)?;
            tx.prepare_cached(SET_EVENT_VALUE)?
                .execute(params![id, stored])?;
            done.events += 1;
        }
    }
    tx.commit()?;
    if done.objects + done.events > 0 {
        conn.execute_batch("VACUUM")?;
        crate::checkpoint::truncate(conn)?;
    }
    Ok(done)
}

/// The rows a query over `(id, key, value)` or `(key, value)` returns whose
/// value is stale, each with its row id and opened text.
fn stale_rows<Id>(
    tx: &rusqlite::Transaction<'_>,
    query: &str,
    prefix: &str,
    width: i64,
    sealer: &Sealer,
    id: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Id>,
) -> Result<Vec<(String, Id, String)>, StoreError> {
    let mut stmt = tx.prepare(query)?;
    let mut rows = stmt.query(params![prefix, width])?;
    let mut stale = Vec::new();
    while let Some(row) = rows.next()? {
        let columns = row.as_ref().column_count();
        let key: String = row.get(columns - 2)?;
        let value = row.get_ref(columns - 1)?;
        if !sealer.is_current(&key, value) {
            let text = seal::open(Some(sealer), &key, value)?;
            stale.push((key, id(row)?, text));
        }
    }
    Ok(stale)
}
