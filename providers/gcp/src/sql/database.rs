//! `Database.sql.gcp.plinth.dev`: a database in a Cloud SQL instance.
//!
//! Its external name is the database name, so it is deterministic. Cloud
//! SQL databases carry no labels, so one of the name that exists already is
//! managed from then on, as Crossplane's GCP provider does. It is made once
//! its instance is RUNNABLE.

use std::sync::Arc;

use google_cloud_sql_v1::model::Database as Model;
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Request,
};
use serde_json::{json, Value};

use super::{instance_field, runnable_instance, GROUP};
use crate::config::{Clients, Pool};
use crate::errors::{self, classify, Answer};
use crate::operations::{Operations, Progress, Scope};
use crate::rest;

/// The Cloud SQL `Database` kind.
pub struct Database {
    clients: Arc<Pool>,
    operations: Arc<Operations>,
}

impl Database {
    pub fn new(clients: Arc<Pool>, operations: Arc<Operations>) -> Database {
        Database {
            clients,
            operations,
        }
    }

    async fn get(
        &self,
        clients: &Clients,
        instance: &str,
        name: &str,
    ) -> Result<Option<Value>, ProviderError> {
        match clients
            .sql_databases
            .get()
            .set_project(&clients.project)
            .set_instance(instance)
            .set_database(name)
            .send()
            .await
        {
            Ok(found) => Ok(Some(rest::json(&found))),
            Err(e) if errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(
                &format!("get database {name} of Cloud SQL instance {instance}"),
                &e,
            )),
        }
    }
}

/// The database a resource asks for, as REST JSON.
fn desired(req: &Request, instance: &str, project: &str) -> Result<Value, ProviderError> {
    let mut body =
        json!({"name": req.external_name_or_name(), "instance": instance, "project": project});
    for field in ["charset", "collation"] {
        if let Some(value) = req.field(field) {
            body[field] = value.clone();
        }
    }
    rest::normalized::<Model>("Cloud SQL database", body)
}

#[async_trait]
impl ExternalResource for Database {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "Database".into(),
            plural: "databases".into(),
            description: "A database in a Cloud SQL instance.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "instance": {"type": "string", "description": "The Cloud SQL instance's name."},
                    "charset": {"type": "string", "description": "The character set, e.g. UTF8."},
                    "collation": {"type": "string", "description": "The collation, e.g. en_US.UTF8."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "charset": {"type": "string"},
                    "collation": {"type": "string"},
                    "selfLink": {"type": "string"}
                }
            }),
            connection_secret_keys: Vec::new(),
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
                format!("{name:?} is longer than the 63 characters a database name may have"),
            ));
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name();
        let target = format!("database {name} of Cloud SQL instance {instance}");
        let progress = self
            .operations
            .progress(&clients, &req.uid, &target)
            .await?;
        let Some(database) = self.get(&clients, &instance, name).await? else {
            return Ok(match progress {
                Progress::Running(message) => Observation::available(json!({}))
                    .with_readiness(provider_sdk::Readiness::Creating, message),
                Progress::Idle => Observation::absent(),
            });
        };
        let at_provider = json!({
            "charset": database.get("charset"),
            "collation": database.get("collation"),
            "selfLink": database.get("selfLink"),
        });
        let mut diff = Vec::new();
        if progress == Progress::Idle {
            let want = desired(req, &instance, &clients.project)?;
            rest::differences("", &want, &database, &mut diff);
        }
        Ok(Observation::available(at_provider).with_diff(diff.join("; ")))
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name().to_string();
        let target = format!("database {name} of Cloud SQL instance {instance}");
        runnable_instance(&clients, &instance, &target).await?;
        let model: Model = rest::model(
            "Cloud SQL database",
            desired(req, &instance, &clients.project)?,
        )?;
        match clients
            .sql_databases
            .insert()
            .set_project(&clients.project)
            .set_instance(&instance)
            .set_body(model)
            .send()
            .await
        {
            Ok(operation) => self
                .operations
                .track(&req.uid, Scope::Sql, "create", &operation),
            // A retried Create, or a database made by hand: it is managed.
            Err(e) if Answer::of(&e).is_conflict() => {}
            Err(e) => return Err(classify(&format!("insert {target}"), &e)),
        }
        Ok(Created {
            external_name: name,
            connection: ConnectionDetails::new(),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name();
        let target = format!("database {name} of Cloud SQL instance {instance}");
        runnable_instance(&clients, &instance, &target).await?;
        let model: Model = rest::model(
            "Cloud SQL database",
            desired(req, &instance, &clients.project)?,
        )?;
        let operation = clients
            .sql_databases
            .patch()
            .set_project(&clients.project)
            .set_instance(&instance)
            .set_database(name)
            .set_body(model)
            .send()
            .await
            .map_err(|e| classify(&format!("patch {target}"), &e))?;
        self.operations
            .track(&req.uid, Scope::Sql, "update", &operation);
        Ok(ConnectionDetails::new())
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let instance = instance_field(req)?;
        let name = req.external_name_or_name();
        let target = format!("database {name} of Cloud SQL instance {instance}");
        if let Progress::Running(message) = self
            .operations
            .progress(&clients, &req.uid, &target)
            .await?
        {
            return Err(ProviderError::retryable(format!(
                "{target} is deleted once done {message}"
            )));
        }
        if self.get(&clients, &instance, name).await?.is_none() {
            return Ok(());
        }
        match clients
            .sql_databases
            .delete()
            .set_project(&clients.project)
            .set_instance(&instance)
            .set_database(name)
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
