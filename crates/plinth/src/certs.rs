//! `plinth certs`: the mTLS Secrets cluster mode needs, as manifests. A CA;
//! the controller's client certificate (also under the name the function
//! runtime reads by default); and each provider's serving certificate,
//! for its Service's names. The CA's key is written beside the manifests,
//! not into the cluster, so it can sign again later.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::{json, Value};

#[derive(Args, Debug, Clone)]
pub struct CertsArgs {
    /// The namespace the controllers and providers run in.
    #[arg(long, default_value = "plinth-system")]
    pub namespace: String,
    /// The providers to make serving certificates for.
    #[arg(long, value_delimiter = ',', default_values_t = ["local".to_string(), "nop".to_string(), "aws".to_string(), "gcp".to_string(), "azure".to_string()])]
    pub providers: Vec<String>,
    /// Where `secrets.yaml` and the CA's `ca.key` are written.
    #[arg(long, default_value = "plinth-certs")]
    pub output: PathBuf,
}

/// The Secret names the manifests in deploy/ refer to.
pub const CA_SECRET: &str = "plinth-ca";
pub const CONTROLLER_SECRET: &str = "plinth-controller-client";

fn named(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Names of their own: a leaf whose issuer equals its subject reads as
    // self-signed to BoringSSL (gRPC's, in the Python and Go SDKs).
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "plinth");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    params
}

fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "plinth"}},
           "data": data})
}

/// The DNS names a provider's Service answers to.
pub fn provider_names(provider: &str, namespace: &str) -> Vec<String> {
    let service = format!("plinth-provider-{provider}");
    vec![
        service.clone(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

pub fn run(args: CertsArgs) -> Result<()> {
    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut ca_params = named("plinth CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params
        .clone()
        .self_signed(&ca_key)
        .context("cannot sign the CA certificate")?;
    let ca_pem = ca.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |cn: &str, dns: &[String], server: bool| -> Result<(String, String)> {
        let mut params = named(cn);
        params.subject_alt_names = dns
            .iter()
            .map(|n| n.clone().try_into().map(SanType::DnsName))
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot encode the names of {cn}"))?;
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key =
            KeyPair::generate().with_context(|| format!("cannot generate the key of {cn}"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .with_context(|| format!("cannot sign the certificate of {cn}"))?;
        Ok((cert.pem(), key.serialize_pem()))
    };

    let ns = args.namespace.as_str();
    let (client_crt, client_key) = leaf("plinth-controller", &[], false)?;
    let client = [
        ("ca.crt", ca_pem.as_str()),
        ("tls.crt", &client_crt),
        ("tls.key", &client_key),
    ];
    let mut secrets = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CA_SECRET, "namespace": ns, "labels": {"app.kubernetes.io/part-of": "plinth"}},
               "data": {"ca.crt": base64::engine::general_purpose::STANDARD.encode(&ca_pem)}}),
        secret(ns, CONTROLLER_SECRET, &client),
        // The function runtime's default Secret for functions reached over mTLS.
        secret(ns, "plinth-function-tls-client", &client),
    ];
    for provider in &args.providers {
        let names = provider_names(provider, ns);
        let (crt, key) = leaf(&format!("plinth-provider-{provider}"), &names, true)?;
        secrets.push(secret(
            ns,
            &format!("plinth-provider-{provider}-tls"),
            &[
                ("ca.crt", ca_pem.as_str()),
                ("tls.crt", &crt),
                ("tls.key", &key),
            ],
        ));
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut yaml = String::new();
    for s in &secrets {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(s).context("cannot print YAML")?);
    }
    let write_private = |file: &str, bytes: &[u8]| -> Result<()> {
        let path = args.output.join(file);
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(bytes))
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write_private("secrets.yaml", yaml.as_bytes())?;
    write_private("ca.key", issuer.key().serialize_pem().as_bytes())?;
    eprintln!(
        "wrote {} Secrets for namespace {ns} to {} (kubectl apply -f it), and the CA's key to {}",
        secrets.len(),
        args.output.join("secrets.yaml").display(),
        args.output.join("ca.key").display()
    );
    Ok(())
}
