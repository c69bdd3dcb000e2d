//! What the benchmarks' Plinth processes use: peak memory and CPU seconds
//! of `plinth up`, of each provider (with what it runs) and of the
//! PostgreSQL server `plinth up` supervises, read from /proc.

use std::path::PathBuf;

/// One running process: its parent and the name of its program.
struct Proc {
    pid: u32,
    ppid: u32,
    program: String,
    /// Started as a composition function is: `--address ... --insecure`.
    function: bool,
}

fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(ppid) = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let program = String::from_utf8_lossy(argv0)
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let function =
            args.contains(&b"--address".as_slice()) && args.contains(&b"--insecure".as_slice());
        out.push(Proc {
            pid,
            ppid,
            program,
            function,
        });
    }
    out
}

/// The group of every composition function `plinth up` supervises.
pub(crate) const FUNCTIONS: &str = "composition functions";

fn descendants(all: &[Proc], root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|p| p.ppid == parent).map(|p| p.pid));
        i += 1;
    }
    found
}

/// The postmaster of the PostgreSQL cluster `plinth up` supervises for a
/// data directory. pg_ctl daemonizes it, so it is no child of `plinth up`;
/// its pid file says which it is.
fn postmaster(data_dir: &std::path::Path) -> Option<u32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/data/postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some(pid)
}

/// Every Plinth process, grouped by what it is: `plinth up`, each provider
/// (with anything it runs), and the supervised PostgreSQL (postmaster and
/// backends). Each group: a label and its pids, the first its root.
fn plinth_groups(server: u32, data_dir: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    let all = processes();
    // While pg_ctl starts it, the postmaster is still below plinth up's
    // helper processes: counted once, as PostgreSQL.
    let postgres = postmaster(data_dir)
        .map(|pid| descendants(&all, pid))
        .unwrap_or_default();
    let mut own = vec![server];
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    for child in all.iter().filter(|p| p.ppid == server) {
        let pids: Vec<u32> = descendants(&all, child.pid)
            .into_iter()
            .filter(|p| !postgres.contains(p))
            .collect();
        if child.function {
            match groups.iter_mut().find(|(label, _)| label == FUNCTIONS) {
                Some((_, all)) => all.extend(pids),
                None => groups.push((FUNCTIONS.to_string(), pids)),
            }
            continue;
        }
        match child.program.strip_prefix("plinth-provider-") {
            Some(name) => groups.push((format!("provider {name}"), pids)),
            // Short-lived helpers (runuser, pg_ctl) are plinth up's own work.
            None => own.extend(pids),
        }
    }
    groups.insert(0, ("plinth up".to_string(), own));
    if !postgres.is_empty() {
        groups.push(("PostgreSQL (supervised)".into(), postgres));
    }
    groups
}

pub(crate) fn rss_mib(pid: u32) -> f64 {
    proc_mib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size: shared pages (PostgreSQL's shared buffers, the
/// libraries every process maps) counted once across the processes that
/// share them, where RSS counts them in each.
pub(crate) fn pss_mib(pid: u32) -> f64 {
    proc_mib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// The kB figure on the line starting `field` of a /proc file, in MiB; 0
/// when the process is gone.
fn proc_mib(path: &str, field: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds of a process; with `reaped`, also of its children that
/// exited (a postmaster's finished backends).
pub(crate) fn cpu_seconds(pid: u32, reaped: bool) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            let mut ticks = field(11)? + field(12)?;
            if reaped {
                ticks += field(13)? + field(14)?;
            }
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

fn group_cpu(pids: &[u32]) -> f64 {
    pids.iter()
        .enumerate()
        .map(|(i, pid)| cpu_seconds(*pid, i == 0))
        .sum()
}

/// Peak memory and latest CPU of every group of Plinth processes.
pub(crate) struct Usage {
    server: u32,
    data_dir: PathBuf,
    pub(crate) peak_rss: f64,
    pub(crate) peak_pss: f64,
    /// label → (peak RSS MiB, CPU seconds when last seen)
    pub(crate) groups: std::collections::BTreeMap<String, (f64, f64)>,
    /// Labels in the order first seen, for the table.
    pub(crate) order: Vec<String>,
}

impl Usage {
    /// Watches `plinth up` (pid `server`) running on `data_dir`.
    pub(crate) fn new(server: u32, data_dir: PathBuf) -> Usage {
        Usage {
            server,
            data_dir,
            peak_rss: 0.0,
            peak_pss: 0.0,
            groups: Default::default(),
            order: Vec::new(),
        }
    }

    pub(crate) fn sample(&mut self) {
        let mut total = 0.0;
        let mut pss = 0.0;
        for (label, pids) in plinth_groups(self.server, &self.data_dir) {
            let rss: f64 = pids.iter().copied().map(rss_mib).sum();
            total += rss;
            pss += pids.iter().copied().map(pss_mib).sum::<f64>();
            let cpu = group_cpu(&pids);
            if !self.groups.contains_key(&label) {
                self.order.push(label.clone());
            }
            let entry = self.groups.entry(label).or_insert((0.0, 0.0));
            entry.0 = entry.0.max(rss);
            entry.1 = entry.1.max(cpu);
        }
        self.peak_rss = self.peak_rss.max(total);
        self.peak_pss = self.peak_pss.max(pss);
    }

    /// The RSS of every Plinth process together now, MiB.
    pub(crate) fn current_rss(&mut self) -> f64 {
        self.sample();
        plinth_groups(self.server, &self.data_dir)
            .iter()
            .flat_map(|(_, pids)| pids.iter().copied().map(rss_mib))
            .sum()
    }

    pub(crate) fn total_cpu(&self) -> f64 {
        plinth_groups(self.server, &self.data_dir)
            .iter()
            .map(|(_, pids)| group_cpu(pids))
            .sum()
    }
}
