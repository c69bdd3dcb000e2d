//! `plinth-provider-nop`: started by `plinth up`, never by hand.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match provider_sdk::serve(plinth_provider_nop::provider()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth-provider-nop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
