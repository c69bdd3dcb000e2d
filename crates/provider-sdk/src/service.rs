//! The gRPC service: decodes each call, finds the kind and its
//! ProviderConfig, and dispatches.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tonic::{Response, Status};

use crate::error::ProviderError;
use crate::kind::{ExternalResource, ProviderConfig, Request};
use crate::pb;

/// A provider: its name, its ProviderConfig's group and schema, and its kinds.
#[derive(Clone)]
pub struct Provider {
    name: String,
    config_group: String,
    config_schema: Value,
    kinds: Arc<HashMap<String, Arc<dyn ExternalResource>>>,
    configs: Arc<RwLock<HashMap<String, Arc<ProviderConfig>>>>,
}

impl Provider {
    /// `config_group` is the API group of this provider's ProviderConfig kind.
    pub fn new(name: &str, config_group: &str, config_schema: Value) -> Provider {
        Provider {
            name: name.to_string(),
            config_group: config_group.to_string(),
            config_schema,
            kinds: Arc::new(HashMap::new()),
            configs: Arc::default(),
        }
    }

    /// Adds a kind.
    pub fn kind(mut self, kind: impl ExternalResource) -> Provider {
        let schema = kind.schema();
        Arc::make_mut(&mut self.kinds).insert(schema.kind.clone(), Arc::new(kind));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn resolve(
        &self,
        resource: Option<pb::Resource>,
    ) -> Result<(Arc<dyn ExternalResource>, Request), Status> {
        let resource =
            resource.ok_or_else(|| Status::invalid_argument("the request carries no resource"))?;
        let kind = self.kinds.get(&resource.kind).cloned().ok_or_else(|| {
            Status::unimplemented(format!(
                "provider {} does not serve kind {:?}",
                self.name, resource.kind
            ))
        })?;
        let config = self
            .configs
            .read()
            .map_err(|_| Status::internal("the configuration lock is poisoned"))?
            .get(&resource.provider_config)
            .cloned()
            .ok_or_else(|| {
                Status::from(ProviderError::NotConfigured(
                    resource.provider_config.clone(),
                ))
            })?;
        let for_provider = if resource.for_provider_json.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&resource.for_provider_json).map_err(|e| {
                Status::invalid_argument(format!("forProvider is not valid JSON: {e}"))
            })?
        };
        Ok((
            kind,
            Request {
                name: resource.name,
                uid: resource.uid,
                external_name: resource.external_name,
                for_provider,
                secrets: resource.secrets.into_iter().collect(),
                secret_seed: resource.secret_seed,
                config,
            },
        ))
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    if v.is_null() {
        Vec::new()
    } else {
        v.to_string().into_bytes()
    }
}

#[tonic::async_trait]
impl pb::provider_server::Provider for Provider {
    async fn get_schema(
        &self,
        _request: tonic::Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        let mut kinds: Vec<pb::KindSchema> =
            self.kinds.values().map(|k| k.schema().to_pb()).collect();
        kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(Response::new(pb::GetSchemaResponse {
            provider: self.name.clone(),
            provider_config_group: self.config_group.clone(),
            provider_config_schema_json: self.config_schema.to_string().into_bytes(),
            kinds,
        }))
    }

    async fn configure(
        &self,
        request: tonic::Request<pb::ConfigureRequest>,
    ) -> Result<Response<pb::ConfigureResponse>, Status> {
        let req = request.into_inner();
        let spec = if req.spec_json.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&req.spec_json).map_err(|e| {
                Status::invalid_argument(format!("the ProviderConfig spec is not valid JSON: {e}"))
            })?
        };
        let config = ProviderConfig {
            name: req.name.clone(),
            spec,
            credentials: req.credentials.into_iter().collect(),
        };
        tracing::info!(provider_config = %req.name, "configured");
        self.configs
            .write()
            .map_err(|_| Status::internal("the configuration lock is poisoned"))?
            .insert(req.name, Arc::new(config));
        Ok(Response::new(pb::ConfigureResponse {}))
    }

    async fn validate(
        &self,
        request: tonic::Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let (kind, req) = self.resolve(request.into_inner().resource)?;
        let violations = kind
            .validate(&req)
            .await
            .into_iter()
            .map(|(field, message)| pb::FieldViolation { field, message })
            .collect();
        Ok(Response::new(pb::ValidateResponse { violations }))
    }

    async fn observe(
        &self,
        request: tonic::Request<pb::ObserveRequest>,
    ) -> Result<Response<pb::ObserveResponse>, Status> {
        let (kind, req) = self.resolve(request.into_inner().resource)?;
        let o = kind.observe(&req).await?;
        Ok(Response::new(pb::ObserveResponse {
            exists: o.exists,
            up_to_date: o.up_to_date,
            diff: o.diff,
            late_init_json: o.late_init.as_ref().map(json_bytes).unwrap_or_default(),
            at_provider_json: json_bytes(&o.at_provider),
            connection_details: o.connection.into_iter().collect(),
            readiness: pb::Readiness::from(o.readiness) as i32,
            readiness_message: o.message,
            external_name: o.external_name.unwrap_or_default(),
        }))
    }

    async fn create(
        &self,
        request: tonic::Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let (kind, req) = self.resolve(request.into_inner().resource)?;
        let created = kind.create(&req).await?;
        tracing::info!(kind = %kind.schema().kind, name = %req.name, external_name = %created.external_name, "created");
        Ok(Response::new(pb::CreateResponse {
            external_name: created.external_name,
            connection_details: created.connection.into_iter().collect(),
        }))
    }

    async fn update(
        &self,
        request: tonic::Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let (kind, req) = self.resolve(request.into_inner().resource)?;
        let connection = kind.update(&req).await?;
        tracing::info!(kind = %kind.schema().kind, name = %req.name, "updated");
        Ok(Response::new(pb::UpdateResponse {
            connection_details: connection.into_iter().collect(),
        }))
    }

    async fn delete(
        &self,
        request: tonic::Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let (kind, req) = self.resolve(request.into_inner().resource)?;
        kind.delete(&req).await?;
        tracing::info!(kind = %kind.schema().kind, name = %req.name, "deleted");
        Ok(Response::new(pb::DeleteResponse {}))
    }
}
