//! `plinth-provider-gcp`: started by `plinth up`, never by hand.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match provider_sdk::serve(plinth_provider_gcp::provider()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth-provider-gcp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
