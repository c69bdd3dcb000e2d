//! The handshake between the host and a plugin, in the manner of HashiCorp's
//! go-plugin: the host sets a magic cookie in the environment, the plugin
//! listens and prints one line naming the protocol and its address.
//!
//! The line is `CORE|APP|NETWORK|ADDRESS|PROTOCOL`, for example
//! `1|1|unix|/tmp/plinth-local-41.sock|grpc`.

use std::fmt;

/// The environment variable the host sets, so a plugin run by hand can say
/// what it is instead of waiting for a host that is not there.
pub const MAGIC_COOKIE_KEY: &str = "PLINTH_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str = "d3f1b2c4-plinth-provider-plugin";
/// Where the plugin should put its unix socket; a temp dir when unset.
pub const SOCKET_DIR_ENV: &str = "PLINTH_PLUGIN_SOCKET_DIR";

/// A directory the host gives each provider for state of its own (pid files,
/// say): private to this provider and this control plane, so two control
/// planes on one machine never touch each other's. Read it with
/// [`state_dir`].
pub const STATE_DIR_ENV: &str = "PLINTH_PROVIDER_STATE_DIR";

/// The provider's own state directory, when the host gave it one.
pub fn state_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(STATE_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// A remote provider (cluster mode) listens on this address instead of a
/// unix socket, and only over mTLS.
pub const LISTEN_ENV: &str = "PLINTH_PROVIDER_LISTEN";
/// A directory with `ca.crt` (the CA clients' certificates must chain to),
/// `tls.crt` and `tls.key` (the provider's own), for [`LISTEN_ENV`].
pub const TLS_DIR_ENV: &str = "PLINTH_PROVIDER_TLS_DIR";

/// The handshake format itself.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// `plinth.provider.v1`.
pub const APP_PROTOCOL_VERSION: u32 = 1;

/// How to reach a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(std::path::PathBuf),
    Tcp(std::net::SocketAddr),
}

/// A parsed handshake line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub app_version: u32,
    pub address: Address,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("the plugin printed {0:?}, not a handshake line CORE|APP|NETWORK|ADDRESS|grpc; is it a Plinth provider?")]
    Malformed(String),
    #[error("the plugin speaks handshake version {0}, this host speaks {CORE_PROTOCOL_VERSION}; upgrade the older of the two")]
    CoreVersion(u32),
    #[error("the plugin speaks plinth.provider.v{0}, this host speaks v{APP_PROTOCOL_VERSION}; use a provider built for this Plinth")]
    AppVersion(u32),
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (network, address) = match &self.address {
            Address::Unix(path) => ("unix", path.display().to_string()),
            Address::Tcp(addr) => ("tcp", addr.to_string()),
        };
        write!(
            f,
            "{CORE_PROTOCOL_VERSION}|{}|{network}|{address}|grpc",
            self.app_version
        )
    }
}

impl Handshake {
    pub fn parse(line: &str) -> Result<Handshake, HandshakeError> {
        let malformed = || HandshakeError::Malformed(line.trim().to_string());
        let parts: Vec<&str> = line.trim().split('|').collect();
        let [core, app, network, address, protocol] = parts.as_slice() else {
            return Err(malformed());
        };
        let core: u32 = core.parse().map_err(|_| malformed())?;
        if core != CORE_PROTOCOL_VERSION {
            return Err(HandshakeError::CoreVersion(core));
        }
        let app: u32 = app.parse().map_err(|_| malformed())?;
        if app != APP_PROTOCOL_VERSION {
            return Err(HandshakeError::AppVersion(app));
        }
        if *protocol != "grpc" {
            return Err(malformed());
        }
        let address = match *network {
            "unix" => Address::Unix(address.into()),
            "tcp" => Address::Tcp(address.parse().map_err(|_| malformed())?),
            _ => return Err(malformed()),
        };
        Ok(Handshake {
            app_version: app,
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let h = Handshake {
            app_version: 1,
            address: Address::Unix("/tmp/x.sock".into()),
        };
        assert_eq!(h.to_string(), "1|1|unix|/tmp/x.sock|grpc");
        assert_eq!(Handshake::parse(&h.to_string()), Ok(h));
        let t = Handshake::parse("1|1|tcp|127.0.0.1:4000|grpc\n").unwrap();
        assert_eq!(t.address, Address::Tcp("127.0.0.1:4000".parse().unwrap()));
    }

    #[test]
    fn refuses_other_versions_and_noise() {
        assert_eq!(
            Handshake::parse("2|1|unix|/x|grpc"),
            Err(HandshakeError::CoreVersion(2))
        );
        assert_eq!(
            Handshake::parse("1|9|unix|/x|grpc"),
            Err(HandshakeError::AppVersion(9))
        );
        assert!(Handshake::parse("hello world").is_err());
        assert!(Handshake::parse("1|1|udp|/x|grpc").is_err());
    }
}
