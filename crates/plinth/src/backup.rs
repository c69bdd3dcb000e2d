//! `plinth backup` and `plinth restore`: a consistent snapshot of a data
//! directory's store, taken while `plinth up` serves (SQLite's online backup
//! API), and its restore. A restore moves the store's revisions past every
//! one handed out before, so clients resuming watches get 410 Gone and list
//! again. Only the store is in a snapshot: the CA, tokens and users stay
//! with the data directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::cli::DataDirArgs;

/// The store's file inside a data directory.
const STATE_DB: &str = "state.db";

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Where to write the snapshot (a SQLite database, mode 0600); must not exist.
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// A snapshot written by `plinth backup`.
    pub file: PathBuf,
    /// Replace a store the data directory already has.
    #[arg(long)]
    pub force: bool,
}

pub fn backup(args: BackupArgs) -> Result<()> {
    let dir = args.data.resolve()?;
    if args.file.exists() {
        bail!(
            "{} exists; choose a new file for the snapshot",
            args.file.display()
        );
    }
    let snapshot = store::backup(&dir.join(STATE_DB), &args.file)
        .with_context(|| format!("cannot back up the store of {}", dir.display()))?;
    eprintln!(
        "backed up {} objects at revision {} to {}",
        snapshot.objects,
        snapshot.revision,
        args.file.display()
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<()> {
    let dir = args.data.resolve()?;
    if !args.file.exists() {
        bail!("there is no snapshot at {}", args.file.display());
    }
    let db = dir.join(STATE_DB);
    if db.exists() {
        if let Some(url) = serving(&dir) {
            bail!(
                "plinth up is serving {} from {}; stop it before restoring",
                url,
                dir.display()
            );
        }
        if !args.force {
            bail!(
                "{} already has a store; pass --force to replace it with the snapshot",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let snapshot = store::restore(&args.file, &db).with_context(|| {
        format!(
            "cannot restore {} into {}",
            args.file.display(),
            dir.display()
        )
    })?;
    eprintln!(
        "restored {} objects into {}; revisions continue from {}, so watches from before resume with 410 Gone and list again",
        snapshot.objects,
        dir.display(),
        snapshot.revision
    );
    Ok(())
}

/// The URL `plinth up` serves this data directory on, if something answers there.
fn serving(dir: &std::path::Path) -> Option<String> {
    let (url, _) = apiserver::pki::server_of(dir).ok()?;
    let authority = url.strip_prefix("https://")?.trim_end_matches('/');
    let addr: std::net::SocketAddr = authority.parse().ok()?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))
        .ok()
        .map(|_| url)
}
