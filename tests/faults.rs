//! Provider faults through a real `plinth up` and the nop provider: a call
//! that hangs is cut off at `--provider-timeout` and its resource says so,
//! while the provider's other resources keep converging; a provider that
//! stops answering altogether (SIGSTOP) is restarted.

mod support;

use std::time::Duration;

use support::{eventually, Plinth};

const WAIT: &str = "--timeout=120s";

fn nop(name: &str, for_provider: &str) -> String {
    format!(
        "---\napiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: {name}\nspec:\n  forProvider: {for_provider}\n"
    )
}

async fn provider_field(plinth: &Plinth, path: &str) -> String {
    plinth
        .kubectl(&["get", "provider", "nop", "-o", &format!("jsonpath={path}")])
        .await
        .stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_call_times_out_and_a_stopped_provider_is_restarted() {
    let mut plinth = Plinth::start_with(&["--provider-timeout", "2s"]).await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    let mut manifest = String::from(
        "apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n",
    );
    manifest.push_str(&nop("slow", "{answerAfterSeconds: 600}"));
    for i in 0..10 {
        manifest.push_str(&nop(&format!("quick-{i}"), "{}"));
    }
    plinth.apply_ok(&["apply", "-f", "-"], &manifest).await;

    // The quick ones converge although one resource's calls all hang.
    for i in 0..10 {
        plinth
            .kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("nopresource/quick-{i}"),
                WAIT,
            ])
            .await;
    }
    eventually(
        Duration::from_secs(60),
        "the slow resource to say it timed out",
        || async {
            let message = plinth
                .kubectl(&[
                    "get",
                    "nopresource",
                    "slow",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Synced\")].message}",
                ])
                .await
                .stdout;
            message.contains("did not answer Observe within 2s")
        },
    )
    .await;
    // The provider itself answers, so it is not restarted for that.
    assert_eq!(provider_field(&plinth, "{.status.restarts}").await, "0");

    // A provider that answers nothing at all, health checks included.
    let address = provider_field(&plinth, "{.status.address}").await;
    let pid = address
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".sock")
        .to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill");
    assert!(stopped.success(), "kill -STOP {pid} (from {address})");
    eventually(
        Duration::from_secs(60),
        "the stopped provider to be restarted",
        || async {
            provider_field(&plinth, "{.status.restarts}")
                .await
                .parse::<u32>()
                .is_ok_and(|n| n >= 1)
        },
    )
    .await;
    let last_error = provider_field(&plinth, "{.status.lastError}").await;
    assert!(last_error.contains("health checks"), "{last_error}");
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    // The restarted provider serves new resources and still knows the old ones.
    plinth
        .apply_ok(&["apply", "-f", "-"], &nop("after-restart", "{}"))
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "nopresource/after-restart",
            WAIT,
        ])
        .await;
    plinth
        .kubectl_ok(&["delete", "nopresource", "slow", "--wait=false"])
        .await;
    plinth.stop().await;
}
