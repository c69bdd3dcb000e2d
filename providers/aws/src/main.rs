//! `plinth-provider-aws`: started by `plinth up`, never by hand.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match provider_sdk::serve(plinth_provider_aws::provider()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plinth-provider-aws: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
