//! `Instance` keeps its process running: killed from outside, it comes back.

use std::time::{Duration, Instant};

use provider_sdk::pb::{self, provider_client::ProviderClient};
use provider_sdk::serde_json::{json, Value};

#[tokio::test]
async fn a_killed_instance_is_brought_back() {
    let state = tempfile::tempdir().expect("state dir");
    std::env::set_var(plinth_provider_local::instance::STATE_DIR_ENV, state.path());
    let sockets = tempfile::tempdir().expect("socket dir");
    let running = provider_sdk::serve::start(plinth_provider_local::provider(), sockets.path())
        .await
        .expect("serve");
    let mut client = ProviderClient::new(
        provider_sdk::client::connect(&running.handshake.address)
            .await
            .expect("connect"),
    );
    client
        .configure(pb::ConfigureRequest {
            name: "default".into(),
            spec_json: b"{}".to_vec(),
            credentials: Default::default(),
        })
        .await
        .expect("configure");
    let resource = pb::Resource {
        kind: "Instance".into(),
        name: "sleeper".into(),
        uid: "u-1".into(),
        external_name: String::new(),
        for_provider_json: json!({"command": "sleep", "args": ["300"], "port": 18181})
            .to_string()
            .into_bytes(),
        provider_config: "default".into(),
        secrets: Default::default(),
        secret_seed: Vec::new(),
    };
    client
        .create(pb::CreateRequest {
            resource: Some(resource.clone()),
        })
        .await
        .expect("create");

    let pid_of = |o: &pb::ObserveResponse| -> Option<u64> {
        serde_pid(&o.at_provider_json).filter(|_| o.readiness == pb::Readiness::Available as i32)
    };
    let mut observe = {
        let client = client.clone();
        let resource = resource.clone();
        move || {
            let mut client = client.clone();
            let resource = resource.clone();
            async move {
                client
                    .observe(pb::ObserveRequest {
                        resource: Some(resource),
                    })
                    .await
                    .expect("observe")
                    .into_inner()
            }
        }
    };
    let first = wait_for(&mut observe, |o| pid_of(o).is_some()).await;
    let pid = pid_of(&first).expect("a pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let again = wait_for(&mut observe, |o| pid_of(o).is_some_and(|p| p != pid)).await;
    assert!(pid_of(&again).is_some());
    let restarts = provider_sdk::serde_json::from_slice::<Value>(&again.at_provider_json)
        .expect("json")["restarts"]
        .as_u64();
    assert!(restarts >= Some(1), "{restarts:?}");

    client
        .delete(pb::DeleteRequest {
            resource: Some(resource.clone()),
        })
        .await
        .expect("delete");
    let gone = observe().await;
    assert!(!gone.exists);
    running.stop().await.expect("stop");
}

fn serde_pid(json: &[u8]) -> Option<u64> {
    provider_sdk::serde_json::from_slice::<Value>(json)
        .ok()?
        .get("pid")?
        .as_u64()
}

async fn wait_for<F, Fut>(
    observe: &mut F,
    done: impl Fn(&pb::ObserveResponse) -> bool,
) -> pb::ObserveResponse
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = pb::ObserveResponse>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = observe().await;
        if done(&o) {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; last observation: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
