//! The PostgreSQL server `plinth up` runs for the local provider when no
//! `--local-postgres-url` is given and PostgreSQL's server programs are on
//! the machine: one cluster, on 127.0.0.1, supervised for as long as
//! `plinth up` runs. PostgreSQL refuses to run as root, so as root it runs as
//! the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// Where to look for `initdb` and `pg_ctl` besides `PLINTH_POSTGRES_BIN`.
const BIN_GLOB_ROOT: &str = "/usr/lib/postgresql";

/// Overrides where the cluster lives (by default under the data directory).
pub const CLUSTER_DIR_ENV: &str = "PLINTH_LOCAL_POSTGRES_DIR";

/// A running cluster.
pub struct LocalPostgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    pub url: String,
    supervisor: JoinHandle<()>,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PLINTH_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        return (dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()).then_some(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(BIN_GLOB_ROOT)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
        .collect();
    // Highest major version last.
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.pop()
}

async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as `postgres` when we are root.
async fn pg(as_postgres: bool, program: &Path, args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).stdin(Stdio::null());
    let output = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {}", program.display()))?;
    Ok(output)
}

async fn reachable_by_postgres(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Lets the postgres user (and only it) pass through the data directory,
/// so the cluster can live under it: the directory's group becomes
/// `postgres` with search permission only; nothing in it becomes readable
/// (its secrets are 0600 anyway). Only done where the postgres user can
/// already reach the data directory's parent: Plinth never opens up a
/// directory it did not make, such as a home directory above it.
async fn open_to_postgres(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Some(parent) = data_dir.parent() else {
        return;
    };
    if !reachable_by_postgres(parent).await {
        return;
    }
    let group = Command::new("chgrp")
        .arg("postgres")
        .arg(data_dir)
        .status()
        .await;
    if !group.is_ok_and(|s| s.success()) {
        return;
    }
    if let Ok(meta) = std::fs::metadata(data_dir) {
        let mode = meta.permissions().mode() | 0o010;
        if let Err(e) = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode)) {
            tracing::warn!(path = %data_dir.display(), error = %e, "cannot let the postgres user through the data directory");
        }
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

impl LocalPostgres {
    /// Starts (initialising on first use) the cluster of a data directory.
    pub async fn start(data_dir: &Path) -> Result<LocalPostgres> {
        let Some(bin) = find_bin() else {
            bail!("no PostgreSQL server programs (initdb, pg_ctl) under {BIN_GLOB_ROOT}/*/bin or $PLINTH_POSTGRES_BIN");
        };
        let as_postgres = is_root().await;
        let mut dir = data_dir.join("postgres");
        if let Some(chosen) = std::env::var_os(CLUSTER_DIR_ENV) {
            dir = PathBuf::from(chosen);
        } else if as_postgres {
            std::fs::create_dir_all(&dir)?;
            if !reachable_by_postgres(&dir).await {
                open_to_postgres(data_dir).await;
            }
            if !reachable_by_postgres(&dir).await {
                // A parent of the data directory (such as /root) is closed to
                // the postgres user; keep the cluster where it can live.
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                data_dir.hash(&mut h);
                dir = PathBuf::from(format!("/var/lib/plinth/postgres-{:016x}", h.finish()));
                tracing::info!(path = %dir.display(), "the data directory is closed to the postgres user; keeping PostgreSQL's cluster here");
            }
        }
        std::fs::create_dir_all(&dir)?;
        let password_file = data_dir.join("postgres-password");
        let port_file = data_dir.join("postgres-port");
        let password = match std::fs::read_to_string(&password_file) {
            Ok(p) => p.trim().to_string(),
            Err(_) => {
                let p = random_password();
                apiserver::pki::write_private(&password_file, p.as_bytes())?;
                p
            }
        };
        let port: u16 = match std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            Some(p) => p,
            None => {
                let p = free_port()?;
                std::fs::write(&port_file, p.to_string())?;
                p
            }
        };
        let data = dir.join("data");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .await?;
            if !status.success() {
                bail!("cannot give {} to the postgres user", dir.display());
            }
        }
        if !data.join("PG_VERSION").is_file() {
            let pwfile = dir.join("initdb-password");
            std::fs::write(&pwfile, format!("{password}\n"))?;
            if as_postgres {
                Command::new("chown")
                    .arg("postgres")
                    .arg(&pwfile)
                    .status()
                    .await?;
            }
            let data_arg = data.display().to_string();
            let pw_arg = format!("--pwfile={}", pwfile.display());
            let out = pg(
                as_postgres,
                &bin.join("initdb"),
                &[
                    "-D",
                    &data_arg,
                    "-U",
                    "postgres",
                    &pw_arg,
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                ],
            )
            .await?;
            let _ = std::fs::remove_file(&pwfile);
            if !out.status.success() {
                bail!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let cluster = LocalPostgres {
            bin: bin.clone(),
            data: data.clone(),
            as_postgres,
            url: format!("postgresql://postgres:{password}@127.0.0.1:{port}/postgres"),
            supervisor: tokio::spawn(async {}),
        };
        cluster.ensure_running(port, &dir).await?;
        let supervisor = {
            let (bin, data, dir) = (bin, data, dir);
            tokio::spawn(async move {
                let me = LocalPostgres {
                    bin,
                    data,
                    as_postgres,
                    url: String::new(),
                    supervisor: tokio::spawn(async {}),
                };
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    if let Err(e) = me.ensure_running(port, &dir).await {
                        tracing::warn!(error = %e, "the local PostgreSQL server is down and did not restart");
                    }
                }
            })
        };
        Ok(LocalPostgres {
            supervisor,
            ..cluster
        })
    }

    async fn ensure_running(&self, port: u16, dir: &Path) -> Result<()> {
        let data_arg = self.data.display().to_string();
        let status = pg(
            self.as_postgres,
            &self.bin.join("pg_ctl"),
            &["-D", &data_arg, "status"],
        )
        .await?;
        if status.status.success() {
            return Ok(());
        }
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {}",
            dir.display()
        );
        let log = dir.join("server.log").display().to_string();
        let out = pg(
            self.as_postgres,
            &self.bin.join("pg_ctl"),
            &[
                "-D", &data_arg, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        )
        .await?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed: {} (see {log})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tracing::info!(port, "the local PostgreSQL server is running");
        Ok(())
    }

    /// Stops supervising and shuts the server down.
    pub async fn stop(self) {
        self.supervisor.abort();
        let data_arg = self.data.display().to_string();
        let _ = pg(
            self.as_postgres,
            &self.bin.join("pg_ctl"),
            &["-D", &data_arg, "-m", "fast", "stop"],
        )
        .await;
    }
}
