//! `plinth up`: the embedded control plane in one process.

use anyhow::Result;

use crate::cli::UpArgs;

pub async fn run(args: UpArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let data_dir = args.data.resolve()?;
    let config = apiserver::Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        compaction_interval: args.compaction_interval,
        compaction_keep: args.compaction_keep,
        bookmark_interval: args.bookmark_interval,
    };
    let running = apiserver::run(config).await?;
    // The one line a user (or a script) waits for.
    println!(
        "Plinth is serving {} (ready in {} ms); kubeconfig: {}",
        running.url,
        started.elapsed().as_millis(),
        running.kubeconfig.display()
    );
    tracing::info!(
        "try: kubectl --kubeconfig {} get namespaces",
        running.kubeconfig.display()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
