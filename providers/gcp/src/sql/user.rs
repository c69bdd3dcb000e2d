//! `User.sql.gcp.plinth.dev`: a built-in user of a Cloud SQL instance.
//!
//! Its external name is the user name, so it is deterministic. The password
//! is the Secret's that `passwordSecretRef` names, else one derived from
//! the resource's secret seed, as the AWS provider derives its. Cloud SQL
//! never shows a password, so a user of the name that exists already gets
//! the resource's password when it is taken over, and a password changed
//! outside Plinth is not seen.
//!
//! The connection Secret carries the keys every DBaaS backend's does:
//! `host`, `port`, `username`, `password`, `database` and `uri`, the host
//! and port read from the instance.

use std::sync::Arc;

use google_cloud_sql_v1::model::User as Model;
use provider_sdk::connection::{database_details, Endpoint};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde_json::{json, Value};

use super::{
    address, get_instance, instance_field, runnable_instance, Engine, CONNECTION_KEYS, GROUP,
};
use crate::config::{Clients, Pool};
use crate::errors::{self, classify, Answer};
use crate::operations::{Operations, Progress, Scope};
use crate::rest;

/// The Cloud SQL `User` kind.
pub struct User {
    clients: Arc<Pool>,
    operations: Arc<Operations>,
}

impl User {
    pub fn new(clients: Arc<Pool>, operations: Arc<Operations>) -> User {
        User {
            clients,
            operations,
        }
    }

    async fn get(
        &self,
        clients: &Clients,
        instance: &str,
        name: &str,
        host: &str,
    ) -> Result<Option<Value>, ProviderError> {
        match clients
            .sql_users
            .get()
            .set_project(&clients.project)
            .set_instance(instance)
            .set_name(name)
            .set_host(host)
            .send()
            .await
        {
            Ok(found) => Ok(Some(rest::json(&found))),
            Err(e) if errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(
                &format!("get user {name} of Cloud SQL instance {instance}"),
                &e,
            )),
        }
    }

    /// Sets the resource's password on a user that exists.
    async fn set_password(
        &self,
        clients: &Clients,
        req: &Request,
        instance: &str,
    ) -> Result<(), ProviderError> {
        let name = req.external_name_or_name();
        let host = host(req);
        let body: Model = rest::model(
            "Cloud SQL user",
            json!({"name": name, "host": host, "password": password(req)?}),
        )?;
        let operation = clients
            .sql_users
            .update()
            .set_project(&clients.project)
            .set_instance(instance)
            .set_name(name)
            .set_host(&host)
            .set_body(body)
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!("update user {name} of Cloud SQL instance {instance}"),
                    &e,
                )
            })?;
        self.operations
            .track(&req.uid, Scope::Sql, "update", &operation);
        Ok(())
    }

    /// The connection details, with the instance's address when it has one.
    async fn connection(
        &self,
        clients: &Clients,
        req: &Request,
        instance: &str,
    ) -> Result<ConnectionDetails, ProviderError> {
        let Some(found) = get_instance(clients, instance).await? else {
            return Ok(ConnectionDetails::new());
        };
        let engine = Engine::of(
            found
                .get("databaseVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let host = address(&found);
        let password = password(req)?;
        let database = req
            .field("database")
            .and_then(Value::as_str)
            .unwrap_or(engine.default_database);
        Ok(database_details(&Endpoint {
            scheme: engine.scheme,
            host: host.as_deref(),
            port: engine.port,
            username: req.external_name_or_name(),
            password: Some(&password),
            database,
            sslmode: Some("require"),
        }))
    }
}

/// The MySQL host part of the user; empty for PostgreSQL and SQL Server.
fn host(req: &Request) -> String {
    req.field("host")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn password(req: &Request) -> Result<String, ProviderError> {
    if req.field("passwordSecretRef").is_some() {
        return req
            .secret("passwordSecretRef")
            .map(str::to_string)
            .ok_or_else(|| {
                ProviderError::retryable("the Secret key passwordSecretRef names has no value yet")
            });
    }
    req.derived_secret("password").ok_or_else(|| {
        ProviderError::terminal("cannot derive the password: the control plane sent no secret seed")
    })
}

#[async_trait]
impl ExternalResource for User {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "User".into(),
            plural: "users".into(),
            description: "A built-in user of a Cloud SQL instance.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "instance": {"type": "string", "description": "The Cloud SQL instance's name."},
                    "host": {"type": "string", "description": "MySQL only: the host the user connects from, e.g. %."},
                    "database": {"type": "string", "description": "The database the connection Secret's uri names; the engine's default database when unset."},
                    "passwordSecretRef": {
                        "type": "object",
                        "description": "A key of a Secret holding the password. Without it a password is generated.",
                        "required": ["namespace", "name", "key"],
                        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                    }
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {"host": {"type": "string"}, "type": {"type": "string"}}
            }),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Err(e) = instance_field(req) {
            problems.push(("instance".into(), e.to_string()));
        }
        let name = req.external_name_or_name();
        if name.len() > 63 {
            problems.push((
                "metadata.name".into(),
                format!("{name:?} is longer than the 63 characters a user name may have"),
            ));
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name();
        let target = format!("user {name} of Cloud SQL instance {instance}");
        let progress = self
            .operations
            .progress(&clients, &req.uid, &target)
            .await?;
        let found = self.get(&clients, &instance, name, &host(req)).await?;
        let (user, message) = match (found, progress) {
            (None, Progress::Running(message)) => {
                return Ok(
                    Observation::available(json!({})).with_readiness(Readiness::Creating, message)
                )
            }
            (None, Progress::Idle) => return Ok(Observation::absent()),
            (Some(user), Progress::Running(message)) => (user, message),
            (Some(user), Progress::Idle) => (user, String::new()),
        };
        let at_provider = json!({"host": user.get("host"), "type": user.get("type")});
        Ok(Observation::available(at_provider)
            .with_connection(self.connection(&clients, req, &instance).await?)
            .with_readiness(Readiness::Available, message))
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name().to_string();
        let target = format!("user {name} of Cloud SQL instance {instance}");
        runnable_instance(&clients, &instance, &target).await?;
        let body: Model = rest::model(
            "Cloud SQL user",
            json!({"name": name, "host": host(req), "password": password(req)?, "instance": instance, "project": clients.project}),
        )?;
        match clients
            .sql_users
            .insert()
            .set_project(&clients.project)
            .set_instance(&instance)
            .set_body(body)
            .send()
            .await
        {
            Ok(operation) => self
                .operations
                .track(&req.uid, Scope::Sql, "create", &operation),
            // A retried Create, or a user made by hand: it gets the
            // resource's password, so the connection Secret is true.
            Err(e) if Answer::of(&e).is_conflict() => {
                self.set_password(&clients, req, &instance).await?
            }
            Err(e) => return Err(classify(&format!("insert {target}"), &e)),
        }
        Ok(Created {
            external_name: name,
            connection: self.connection(&clients, req, &instance).await?,
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        runnable_instance(
            &clients,
            &instance,
            &format!("user {}", req.external_name_or_name()),
        )
        .await?;
        self.set_password(&clients, req, &instance).await?;
        self.connection(&clients, req, &instance).await
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name();
        let target = format!("user {name} of Cloud SQL instance {instance}");
        if let Progress::Running(message) = self
            .operations
            .progress(&clients, &req.uid, &target)
            .await?
        {
            return Err(ProviderError::retryable(format!(
                "{target} is deleted once done {message}"
            )));
        }
        if self
            .get(&clients, &instance, name, &host(req))
            .await?
            .is_none()
        {
            return Ok(());
        }
        match clients
            .sql_users
            .delete()
            .set_project(&clients.project)
            .set_instance(&instance)
            .set_name(name)
            .set_host(host(req))
            .send()
            .await
        {
            Ok(operation) => {
                self.operations
                    .track(&req.uid, Scope::Sql, "delete", &operation);
                Ok(())
            }
            Err(e) if Answer::of(&e).is_not_found() => Ok(()),
            Err(e) => Err(classify(&format!("delete {target}"), &e)),
        }
    }
}
