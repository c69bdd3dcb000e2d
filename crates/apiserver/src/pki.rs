//! The server's credentials: a CA made on first start, a serving certificate
//! signed by it on every start, the admin bearer token, and the kubeconfig
//! that ties them together. Secret files are written with mode 0600.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TOKEN: &str = "token";
/// The key service-account tokens are signed with (ES256).
const SERVICE_ACCOUNT_KEY: &str = "sa.key";
/// File name of the kubeconfig inside the data directory.
pub const KUBECONFIG: &str = "kubeconfig";

/// What TLS and authentication need at run time.
pub struct Credentials {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub token: String,
    /// PKCS#8 PEM of the P-256 key service-account tokens are signed with.
    pub service_account_key_pem: String,
    /// Its public half (SubjectPublicKeyInfo PEM), which verifies them.
    pub service_account_public_pem: String,
}

/// Loads the CA and token from `dir`, creating them on first start, and signs
/// a serving certificate valid for loopback and `listen`.
pub fn load_or_create(dir: &Path, listen: SocketAddr) -> Result<Credentials> {
    let ca_key_path = dir.join(CA_KEY);
    let ca_key = if ca_key_path.exists() {
        load_ca_key(dir)?
    } else {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let cert = ca_params()
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        write_private(&dir.join(CA_CERT), cert.pem().as_bytes())?;
        key
    };
    let ca_pem = fs::read_to_string(dir.join(CA_CERT))
        .with_context(|| format!("cannot read {}", dir.join(CA_CERT).display()))?;

    let token_path = dir.join(TOKEN);
    let token = if token_path.exists() {
        fs::read_to_string(&token_path)
            .with_context(|| format!("cannot read {}", token_path.display()))?
            .trim()
            .to_string()
    } else {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        write_private(&token_path, token.as_bytes())?;
        token
    };

    let sa_key_path = dir.join(SERVICE_ACCOUNT_KEY);
    let sa_key = if sa_key_path.exists() {
        let pem = fs::read_to_string(&sa_key_path)
            .with_context(|| format!("cannot read {}", sa_key_path.display()))?;
        KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "cannot parse {}; delete it to make a new one (tokens signed with it stop working)",
                sa_key_path.display()
            )
        })?
    } else {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("cannot generate the service-account signing key")?;
        write_private(&sa_key_path, key.serialize_pem().as_bytes())?;
        key
    };

    let issuer = Issuer::new(ca_params(), ca_key);
    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = listen.ip();
    if !ip.is_unspecified() && !sans.contains(&ip.to_string()) {
        sans.push(ip.to_string());
    }
    let mut params = CertificateParams::new(Vec::<String>::new())
        .context("cannot build the serving certificate")?;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .context("cannot encode the serving certificate's names")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "plinth-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_key = KeyPair::generate().context("cannot generate the serving key")?;
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .context("cannot sign the serving certificate")?;
    Ok(Credentials {
        ca_pem,
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        token,
        service_account_key_pem: sa_key.serialize_pem(),
        service_account_public_pem: sa_key.public_key_pem(),
    })
}

/// The CA's key, which signs serving and user certificates.
pub(crate) fn load_ca_key(dir: &Path) -> Result<KeyPair> {
    let path = dir.join(CA_KEY);
    let pem = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; has `plinth up` run with this data directory?",
            path.display()
        )
    })?;
    KeyPair::from_pem(&pem).with_context(|| {
        format!(
            "cannot parse {}; delete the data directory's ca.* files to make a new CA",
            path.display()
        )
    })
}

/// The server URL and CA of a data directory, from the admin kubeconfig
/// `plinth up` last wrote there, for kubeconfigs made for other users.
pub fn server_of(dir: &Path) -> Result<(String, String)> {
    let path = dir.join(KUBECONFIG);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; start `plinth up` with this data directory first",
            path.display()
        )
    })?;
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().to_string())
        .with_context(|| format!("cannot find the server in {}", path.display()))?;
    let ca = fs::read_to_string(dir.join(CA_CERT))
        .with_context(|| format!("cannot read {}", dir.join(CA_CERT).display()))?;
    Ok((server, ca))
}

/// The CA's parameters; rebuilt identically on every start so the stored CA
/// key can sign new serving certificates without parsing the CA certificate.
pub(crate) fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "plinth-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// Renders the admin kubeconfig.
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    render_kubeconfig(
        server,
        ca_pem,
        "plinth-admin",
        "plinth",
        "default",
        &format!("    token: {token}\n"),
    )
}

/// A kubeconfig with one cluster (this server), one user authenticated by
/// `credentials` (its `user:` fields, indented) and one context.
pub(crate) fn render_kubeconfig(
    server: &str,
    ca_pem: &str,
    user: &str,
    context: &str,
    namespace: &str,
    credentials: &str,
) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: plinth
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
{credentials}contexts:
- name: {context}
  context:
    cluster: plinth
    user: {user}
    namespace: {namespace}
current-context: {context}
"
    )
}

/// Writes the kubeconfig into the data directory; returns its path.
pub fn write_kubeconfig(dir: &Path, server: &str, creds: &Credentials) -> Result<PathBuf> {
    let path = dir.join(KUBECONFIG);
    write_private(
        &path,
        kubeconfig(server, &creds.ca_pem, &creds.token).as_bytes(),
    )?;
    Ok(path)
}

/// Writes a file readable by its owner only, replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
