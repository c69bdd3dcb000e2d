//! Connecting to a provider plugin by the address its handshake named.

use std::io;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::handshake::Address;
use crate::pb::provider_client::ProviderClient;

/// Opens a channel to a plugin.
pub async fn connect(address: &Address) -> Result<Channel, tonic::transport::Error> {
    match address {
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is required by the API and ignored by the connector.
            Endpoint::from_static("http://plugin.invalid")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
                }))
                .await
        }
        Address::Tcp(addr) => {
            Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await
        }
    }
}

/// A protocol client for a plugin.
pub async fn client(address: &Address) -> Result<ProviderClient<Channel>, tonic::transport::Error> {
    Ok(ProviderClient::new(connect(address).await?))
}

/// Opens an mTLS channel to a remote provider at `host:port`.
pub async fn connect_remote(
    endpoint: &str,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("https://{endpoint}"))?
        .tls_config(tls)?
        .connect()
        .await
}
