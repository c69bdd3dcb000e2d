//! `Database`: a PostgreSQL database, an owner role of the same name, and
//! that role's password.
//!
//! The password is derived from the resource's secret seed (stable for its
//! life, from the control plane) rather than stored: Observe can always
//! report it, a retried Create sets the same one, and a Create whose result
//! was lost loses nothing. A database Plinth created or updated carries a
//! comment naming the resource's UID; one it only observes (an import) keeps
//! its own password, and no made-up one is reported for it.

use std::collections::BTreeSet;

use provider_sdk::serde_json::{json, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Request,
};
use sha2::{Digest, Sha256};

use crate::admin::{self, ident, literal, Pool, Server};

/// Extensions every database has, which are never dropped.
const BUILT_IN_EXTENSIONS: &[&str] = &["plpgsql"];

#[derive(Default)]
pub struct Database {
    pool: Pool,
}

fn password(server: &Server, req: &Request) -> String {
    if let Some(derived) = req.derived_secret("postgres role password") {
        return derived;
    }
    // No seed (a control plane older than secret seeds): derive from the
    // admin credentials, as before.
    let digest = Sha256::digest(format!("{}\n{}", server.secret, req.uid).as_bytes());
    hex::encode(&digest[..16])
}

/// The database comment that says which resource manages it.
fn ownership_marker(uid: &str) -> String {
    format!("managed by plinth: {uid}")
}

/// The connection details; without a password when Plinth cannot vouch for
/// the role's (a database it only observes).
fn connection(server: &Server, name: &str, password: Option<&str>) -> ConnectionDetails {
    let userinfo = match password {
        Some(password) => format!("{name}:{password}"),
        None => name.to_string(),
    };
    let uri = format!(
        "postgresql://{userinfo}@{}:{}/{name}",
        server.host, server.port
    );
    let mut details: ConnectionDetails = [
        ("host", server.host.clone()),
        ("port", server.port.to_string()),
        ("username", name.to_string()),
        ("database", name.to_string()),
        ("uri", uri),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_bytes()))
    .collect();
    if let Some(password) = password {
        details.insert("password".into(), password.as_bytes().to_vec());
    }
    // libpq's keyword form, which Dapr's PostgreSQL state store reads.
    let keywords = provider_sdk::connection::postgres_keywords(
        &server.host,
        server.port,
        name,
        password,
        name,
        None,
    );
    details.insert("connectionString".into(), keywords.into_bytes());
    details
}

fn desired_extensions(req: &Request) -> BTreeSet<String> {
    req.field("extensions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Database {
    async fn installed_extensions(
        &self,
        server: &Server,
        name: &str,
    ) -> Result<BTreeSet<String>, ProviderError> {
        let mut config = server.config.clone();
        config.dbname(name);
        let client = admin::connect(&config, server).await?;
        let rows = client
            .query("SELECT extname FROM pg_extension", &[])
            .await
            .map_err(|e| admin::error(&e, server))?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|e| !BUILT_IN_EXTENSIONS.contains(&e.as_str()))
            .collect())
    }

    async fn set_extensions(
        &self,
        server: &Server,
        name: &str,
        wanted: &BTreeSet<String>,
    ) -> Result<(), ProviderError> {
        let installed = self.installed_extensions(server, name).await?;
        if installed == *wanted {
            return Ok(());
        }
        let mut config = server.config.clone();
        config.dbname(name);
        let client = admin::connect(&config, server).await?;
        for ext in wanted.difference(&installed) {
            client
                .batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS {}", ident(ext)))
                .await
                .map_err(|e| admin::error(&e, server))?;
        }
        for ext in installed.difference(wanted) {
            client
                .batch_execute(&format!("DROP EXTENSION IF EXISTS {}", ident(ext)))
                .await
                .map_err(|e| admin::error(&e, server))?;
        }
        Ok(())
    }

    /// Role, password, connection limit and extensions as the spec says.
    async fn converge(
        &self,
        req: &Request,
        create: bool,
    ) -> Result<ConnectionDetails, ProviderError> {
        let (server, client) = self.pool.admin(&req.config).await?;
        let name = req.external_name_or_name();
        let pw = password(&server, req);
        let role_exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(|e| admin::error(&e, &server))?
            .is_some();
        let verb = if role_exists { "ALTER" } else { "CREATE" };
        let statement = format!(
            "{verb} ROLE {} LOGIN PASSWORD {}",
            ident(name),
            literal(&pw)
        );
        match client.batch_execute(&statement).await {
            Ok(()) => {}
            // Lost a race with a concurrent Create of the same resource.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {}
            Err(e) => return Err(admin::error(&e, &server)),
        }
        let limit = req
            .field("connectionLimit")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        let db_exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| admin::error(&e, &server))?
            .is_some();
        if create && !db_exists {
            let statement = format!(
                "CREATE DATABASE {} OWNER {} CONNECTION LIMIT {limit}",
                ident(name),
                ident(name)
            );
            match client.batch_execute(&statement).await {
                Ok(()) => {}
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(admin::error(&e, &server)),
            }
        } else if db_exists {
            client
                .batch_execute(&format!(
                    "ALTER DATABASE {} CONNECTION LIMIT {limit}",
                    ident(name)
                ))
                .await
                .map_err(|e| admin::error(&e, &server))?;
        } else {
            return Err(ProviderError::retryable(format!(
                "database {name} vanished before the update"
            )));
        }
        self.set_extensions(&server, name, &desired_extensions(req))
            .await?;
        // From now on the role's password is the one this resource reports.
        client
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                ident(name),
                literal(&ownership_marker(&req.uid))
            ))
            .await
            .map_err(|e| admin::error(&e, &server))?;
        Ok(connection(&server, name, Some(&pw)))
    }
}

#[async_trait]
impl ExternalResource for Database {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: "postgres.local.plinth.dev".into(),
            version: "v1alpha1".into(),
            kind: "Database".into(),
            plural: "databases".into(),
            description: "A PostgreSQL database with an owner role of the same name and a generated password.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "connectionLimit": {"type": "integer", "minimum": -1, "description": "Maximum concurrent connections; -1 for no limit."},
                    "extensions": {"type": "array", "items": {"type": "string"}, "description": "Extensions to install, e.g. pgcrypto."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "connectionLimit": {"type": "integer"},
                    "extensions": {"type": "array", "items": {"type": "string"}},
                    "owner": {"type": "string"},
                    "sizeBytes": {"type": "integer"}
                }
            }),
            connection_secret_keys: ["host", "port", "username", "password", "database", "uri", "connectionString"].map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let name = req.external_name_or_name();
        if name.len() > 63 {
            problems.push((
                "metadata.name".into(),
                format!(
                    "PostgreSQL names are at most 63 bytes; {name:?} is {}",
                    name.len()
                ),
            ));
        }
        if let Some(exts) = req.field("extensions").and_then(Value::as_array) {
            for (i, e) in exts.iter().enumerate() {
                if e.as_str().is_none_or(str::is_empty) {
                    problems.push((
                        format!("extensions[{i}]"),
                        "must be a non-empty extension name".into(),
                    ));
                }
            }
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let (server, client) = self.pool.admin(&req.config).await?;
        let name = req.external_name_or_name();
        let row = client
            .query_opt(
                "SELECT d.datconnlimit, r.rolname, pg_database_size(d.oid), \
                 shobj_description(d.oid, 'pg_database') \
                 FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1",
                &[&name],
            )
            .await
            .map_err(|e| admin::error(&e, &server))?;
        let Some(row) = row else {
            return Ok(Observation::absent());
        };
        let limit: i32 = row.get(0);
        let owner: String = row.get(1);
        let size: i64 = row.get(2);
        let comment: Option<String> = row.get(3);
        let managed = comment.as_deref() == Some(ownership_marker(&req.uid).as_str());
        let role_exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .map_err(|e| admin::error(&e, &server))?
            .is_some();
        let installed = self.installed_extensions(&server, name).await?;
        let wanted = desired_extensions(req);
        let mut diff = Vec::new();
        if let Some(want) = req.field("connectionLimit").and_then(Value::as_i64) {
            if want != i64::from(limit) {
                diff.push(format!("connectionLimit: {limit} -> {want}"));
            }
        }
        if installed != wanted {
            diff.push(format!("extensions: {installed:?} -> {wanted:?}"));
        }
        if !role_exists {
            diff.push(format!("role {name} is missing"));
        }
        if !managed {
            // Made before this resource took charge (an import, or a Create
            // cut short): Update sets the role's password to this
            // resource's; observing alone leaves it be.
            diff.push(format!(
                "role {name} does not have this resource's password yet"
            ));
        }
        let mut observation = Observation::available(json!({
            "connectionLimit": limit,
            "extensions": installed,
            "owner": owner,
            "sizeBytes": size,
        }))
        .with_diff(diff.join("; "))
        .with_connection(connection(
            &server,
            name,
            managed.then(|| password(&server, req)).as_deref(),
        ));
        if req.field("connectionLimit").is_none() {
            observation = observation.with_late_init(json!({"connectionLimit": limit}));
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let connection = self.converge(req, true).await?;
        Ok(Created {
            external_name: req.external_name_or_name().to_string(),
            connection,
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        self.converge(req, false).await
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let (server, client) = self.pool.admin(&req.config).await?;
        let name = req.external_name_or_name();
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(name)
            ))
            .await
            .map_err(|e| admin::error(&e, &server))?;
        client
            .batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(name)))
            .await
            .map_err(|e| admin::error(&e, &server))?;
        Ok(())
    }
}
