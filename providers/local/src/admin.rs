//! The admin connection to PostgreSQL that a ProviderConfig describes, and
//! PostgreSQL's errors in provider terms.

use std::collections::HashMap;
use std::sync::Arc;

use provider_sdk::{ProviderConfig, ProviderError};
use tokio::sync::Mutex;
use tokio_postgres::{Client, Config, NoTls};

/// The credentials key holding the admin URL.
pub const URL_KEY: &str = "url";
/// A credentials key saying why there is no server, written by `plinth up`
/// when it could not provide one; reported to users as it is.
pub const UNAVAILABLE_KEY: &str = "unavailable";

/// Admin clients by ProviderConfig, reconnected when the config changes or
/// the connection drops.
#[derive(Default)]
pub struct Pool {
    clients: Mutex<HashMap<String, (String, Arc<Client>)>>,
}

/// Where the server is, for connection details.
#[derive(Debug, Clone)]
pub struct Server {
    pub config: Config,
    pub host: String,
    pub port: u16,
    /// Key material for derived passwords: the admin URL, never logged.
    pub secret: String,
}

impl Server {
    pub fn from_config(config: &ProviderConfig) -> Result<Server, ProviderError> {
        let key = config
            .spec
            .pointer("/credentials/secretRef/key")
            .and_then(|v| v.as_str())
            .unwrap_or(URL_KEY);
        if config.credential(key).is_none() {
            if let Some(why) = config.credential(UNAVAILABLE_KEY) {
                return Err(ProviderError::terminal(why.to_string()));
            }
        }
        let url = config.credential(key).ok_or_else(|| {
            ProviderError::terminal(format!(
                "the credentials Secret of ProviderConfig {:?} has no {key:?} key; put postgresql://user:password@host:port/database there",
                config.name
            ))
        })?;
        let parsed: Config = url.parse().map_err(|e| {
            ProviderError::terminal(format!(
                "the {key:?} of ProviderConfig {:?} is not a PostgreSQL URL: {e}",
                config.name
            ))
        })?;
        let host = match parsed.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = parsed.get_ports().first().copied().unwrap_or(5432);
        Ok(Server {
            config: parsed,
            host,
            port,
            secret: url.to_string(),
        })
    }
}

impl Pool {
    /// The admin client for a config.
    pub async fn admin(
        &self,
        config: &ProviderConfig,
    ) -> Result<(Server, Arc<Client>), ProviderError> {
        let server = Server::from_config(config)?;
        let mut clients = self.clients.lock().await;
        if let Some((fingerprint, client)) = clients.get(&config.name) {
            if *fingerprint == server.secret && !client.is_closed() {
                return Ok((server, client.clone()));
            }
        }
        let client = Arc::new(connect(&server.config, &server).await?);
        clients.insert(config.name.clone(), (server.secret.clone(), client.clone()));
        Ok((server, client))
    }
}

/// Connects, handing the connection to a background task.
pub async fn connect(config: &Config, server: &Server) -> Result<Client, ProviderError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| error(&e, server))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// PostgreSQL's error, in its own words, as retryable or terminal.
pub fn error(e: &tokio_postgres::Error, server: &Server) -> ProviderError {
    let Some(db) = e.as_db_error() else {
        return ProviderError::retryable(format!(
            "cannot reach PostgreSQL at {}:{}: {e}",
            server.host, server.port
        ));
    };
    let code = db.code().code();
    let message = format!("PostgreSQL: {} (SQLSTATE {code})", db.message());
    match &code[..2] {
        "28" => ProviderError::Unauthorized(message),
        "42" | "22" | "0A" | "58" | "2B" | "3D" | "55" => ProviderError::terminal(message),
        _ => ProviderError::retryable(message),
    }
}

/// `"name"`, with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
