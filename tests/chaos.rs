//! `plinth bench chaos` at a small size: claims on the nop provider (5 % of
//! its calls failing) and on the local PostgreSQL provider while `plinth up`
//! is killed with SIGKILL three times. The harness itself checks that every
//! claim ends Ready, nothing acknowledged is lost, each external resource is
//! created once and none leaks, and exits non-zero otherwise.

mod support;

use support::{plinth_bin, postgres_url};

#[tokio::test(flavor = "multi_thread")]
async fn claims_survive_kill_9_of_the_control_plane() {
    let url = postgres_url();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        tokio::process::Command::new(plinth_bin())
            .args([
                "bench",
                "chaos",
                "--nop-claims",
                "40",
                "--failure-rate",
                "0.05",
                "--local-claims",
                "5",
                "--kills",
                "3",
                "--max-kill-interval-ms",
                "3000",
                "--timeout",
                "300",
                "--postgres-url",
                &url,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the chaos run finished in time")
    .expect("plinth bench chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every claim Ready"), "{stdout}");
    let kills = stdout
        .lines()
        .find(|l| l.starts_with("kill -9 of plinth up"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(kills, Some(3.0), "{stdout}");
}
