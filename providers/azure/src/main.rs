//! `plinth-provider-azure`: started by `plinth up`, never by hand.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match provider_sdk::serve(plinth_provider_azure::provider()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth-provider-azure: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
