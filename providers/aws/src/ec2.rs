//! `Instance.ec2.aws.plinth.dev`: an EC2 instance.
//!
//! AWS assigns the instance id, so the external name is only known once
//! `RunInstances` answers, and a crash before the control plane records it
//! must neither leak the instance nor launch a second one. Two things make a
//! retried Create find the first launch:
//! - every launch carries a `ClientToken` derived from the object's UID,
//!   which AWS itself uses to return the first instance for a repeated call;
//! - every instance is tagged `plinth.dev/uid`, which Observe and Create look
//!   for when the external name is not known (emulators such as moto ignore
//!   client tokens, and a tag search also survives the token's expiry).

use std::sync::Arc;

use aws_sdk_ec2::types::{
    AttributeValue, Filter, Instance as Observed, InstanceType, ResourceType, Tag, TagSpecification,
};
use base64::Engine;
use provider_sdk::serde_json::{json, Map, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Clients, Pool};
use crate::errors::{self, classify};
use crate::tags::{self, Tags};

/// The connection keys every Instance's Secret carries.
pub const CONNECTION_KEYS: [&str; 2] = ["host", "port"];

/// EC2 resolves image ids of this form from an SSM parameter at launch,
/// e.g. the public parameter naming the newest Amazon Linux AMI.
const SSM_IMAGE_PREFIX: &str = "resolve:ssm:";

/// Instance states that still hold (or will hold) a running machine.
const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

/// What the user asked for: spec.forProvider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Option<Vec<String>>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub port: Option<u16>,
    #[serde(skip)]
    pub tags: Tags,
}

impl Desired {
    pub fn parse(for_provider: &Value) -> Result<Desired, ProviderError> {
        let mut desired: Desired = provider_sdk::serde_json::from_value(for_provider.clone())
            .map_err(|e| {
                ProviderError::terminal(format!("spec.forProvider does not fit Instance: {e}"))
            })?;
        desired.tags = tags::desired(for_provider);
        Ok(desired)
    }
}

/// Ready's reason and message for an instance state, or `None` when the
/// instance is gone for good.
pub fn readiness(state: &str) -> Option<(Readiness, String)> {
    let message = format!("EC2 reports the instance as {state}");
    match state {
        "running" => Some((Readiness::Available, String::new())),
        "pending" => Some((Readiness::Creating, message)),
        "shutting-down" => Some((Readiness::Deleting, message)),
        "terminated" => None,
        // stopping, stopped, and anything AWS adds later.
        _ => Some((Readiness::Unavailable, message)),
    }
}

/// The idempotency token of the launch for `uid`. `after` is the id of an
/// instance this token already launched that has since been terminated, so
/// a resource whose instance was terminated outside Plinth gets a new one.
pub fn client_token(uid: &str, after: Option<&str>) -> String {
    match after {
        None => format!("plinth-{uid}"),
        Some(previous) => {
            let digest = Sha256::digest(format!("{uid}\n{previous}").as_bytes());
            format!("plinth-{}", hex::encode(&digest[..16]))
        }
    }
}

fn state(instance: &Observed) -> &str {
    instance
        .state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str())
}

fn observed_tags(instance: &Observed) -> Tags {
    tags::users(instance.tags().iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

fn security_groups(instance: &Observed) -> Vec<String> {
    let mut groups: Vec<String> = instance
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    groups.sort();
    groups
}

/// Everything that differs between the spec and the instance.
pub fn differences(desired: &Desired, instance: &Observed) -> Vec<String> {
    let mut diff = Vec::new();
    if let Some(want) = &desired.instance_type {
        let have = instance.instance_type().map_or("", |t| t.as_str());
        if want != have {
            diff.push(format!("instanceType: {have} -> {want}"));
        }
    }
    if let Some(want) = &desired.security_group_ids {
        let mut want = want.clone();
        want.sort();
        let have = security_groups(instance);
        if want != have {
            diff.push(format!("securityGroupIds: {have:?} -> {want:?}"));
        }
    }
    diff.extend(tags::diff(&desired.tags, &observed_tags(instance)));
    diff.extend(immutable_changes(desired, instance));
    if state(instance) == "stopped" {
        diff.push("state: stopped -> running".to_string());
    }
    diff
}

/// Differences EC2 cannot apply to a running instance: a new instance is
/// the only way, and Update says so instead of pretending.
pub fn immutable_changes(desired: &Desired, instance: &Observed) -> Vec<String> {
    let mut changes = Vec::new();
    let mut check = |name: &str, want: Option<&str>, have: Option<&str>| {
        if let Some(want) = want {
            let have = have.unwrap_or("");
            if want != have {
                changes.push(format!(
                    "{name}: {have} -> {want} (cannot change on an existing instance)"
                ));
            }
        }
    };
    // An SSM parameter resolves to an AMI id at launch; there is nothing to
    // compare it with afterwards.
    let image = desired
        .image_id
        .as_deref()
        .filter(|i| !i.starts_with(SSM_IMAGE_PREFIX));
    check("imageId", image, instance.image_id());
    check(
        "subnetId",
        desired.subnet_id.as_deref(),
        instance.subnet_id(),
    );
    check("keyName", desired.key_name.as_deref(), instance.key_name());
    changes
}

fn late_init(desired: &Desired, instance: &Observed) -> Map<String, Value> {
    let mut fields = Map::new();
    if desired.subnet_id.is_none() {
        if let Some(subnet) = instance.subnet_id() {
            fields.insert("subnetId".into(), json!(subnet));
        }
    }
    if desired.security_group_ids.is_none() && !instance.security_groups().is_empty() {
        fields.insert("securityGroupIds".into(), json!(security_groups(instance)));
    }
    if desired.key_name.is_none() {
        if let Some(key) = instance.key_name() {
            fields.insert("keyName".into(), json!(key));
        }
    }
    fields
}

fn at_provider(instance: &Observed) -> Value {
    json!({
        "instanceId": instance.instance_id(),
        "state": state(instance),
        "instanceType": instance.instance_type().map(|t| t.as_str()),
        "imageId": instance.image_id(),
        "privateIp": instance.private_ip_address(),
        "publicIp": instance.public_ip_address(),
        "privateDnsName": instance.private_dns_name().filter(|s| !s.is_empty()),
        "publicDnsName": instance.public_dns_name().filter(|s| !s.is_empty()),
        "subnetId": instance.subnet_id(),
        "vpcId": instance.vpc_id(),
        "launchTime": instance.launch_time().map(|t| t.to_string()),
    })
}

/// `host` (the public address when there is one, else the private one) and
/// `port` from the spec.
fn connection(desired: &Desired, instance: &Observed) -> ConnectionDetails {
    let mut details = ConnectionDetails::new();
    let host = instance
        .public_ip_address()
        .or(instance.private_ip_address())
        .filter(|h| !h.is_empty());
    if let Some(host) = host {
        details.insert("host".into(), host.as_bytes().to_vec());
    }
    if let Some(port) = desired.port {
        details.insert("port".into(), port.to_string().into_bytes());
    }
    details
}

fn ec2_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Exits the process when the leak-guard fault is armed (see
/// [`crate::FAULT_EXIT_AFTER_RUN_INSTANCES`]); it fires once per marker file.
fn maybe_crash_after_launch() {
    let Some(marker) = std::env::var_os(crate::FAULT_EXIT_AFTER_RUN_INSTANCES) else {
        return;
    };
    let marker = std::path::PathBuf::from(marker);
    if marker.exists() {
        return;
    }
    if std::fs::write(&marker, b"fired").is_ok() {
        tracing::error!("fault injection: exiting between RunInstances and its answer");
        std::process::exit(86);
    }
}

/// The EC2 `Instance` kind.
pub struct Instance {
    clients: Arc<Pool>,
}

impl Instance {
    pub fn new(clients: Arc<Pool>) -> Instance {
        Instance { clients }
    }

    async fn by_id(&self, clients: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
        match clients
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find(|i| i.instance_id() == Some(id))
                .cloned()),
            Err(e)
                if matches!(
                    errors::code(&e),
                    Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("DescribeInstances", &e)),
        }
    }

    /// The live instance launched for this object's UID, if any.
    async fn by_uid(
        &self,
        clients: &Clients,
        uid: &str,
    ) -> Result<Option<Observed>, ProviderError> {
        let out = clients
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{}", tags::UID))
                    .values(uid)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(LIVE_STATES.map(String::from).to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("DescribeInstances", &e))?;
        let mut found: Vec<Observed> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| state(i) != "terminated")
            .cloned()
            .collect();
        // Should two ever exist, keep to the first launched, consistently.
        found.sort_by(|a, b| {
            a.launch_time()
                .cmp(&b.launch_time())
                .then(a.instance_id().cmp(&b.instance_id()))
        });
        Ok(found.into_iter().next())
    }

    /// The instance behind a request: by external name, else by UID tag.
    async fn find(
        &self,
        clients: &Clients,
        req: &Request,
    ) -> Result<Option<Observed>, ProviderError> {
        if req.external_name.is_empty() {
            self.by_uid(clients, &req.uid).await
        } else {
            self.by_id(clients, &req.external_name).await
        }
    }

    async fn launch(
        &self,
        clients: &Clients,
        req: &Request,
        desired: &Desired,
        token: String,
    ) -> Result<Observed, ProviderError> {
        let mut all_tags = desired.tags.clone();
        all_tags.insert(tags::UID.to_string(), req.uid.clone());
        all_tags.insert(tags::NAME.to_string(), req.name.clone());
        let user_data = desired
            .user_data
            .as_ref()
            .map(|text| base64::engine::general_purpose::STANDARD.encode(text));
        let out = clients
            .ec2
            .run_instances()
            .set_image_id(desired.image_id.clone())
            .set_instance_type(desired.instance_type.as_deref().map(InstanceType::from))
            .min_count(1)
            .max_count(1)
            .client_token(token)
            .set_subnet_id(desired.subnet_id.clone())
            .set_security_group_ids(desired.security_group_ids.clone())
            .set_key_name(desired.key_name.clone())
            .set_user_data(user_data)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(ec2_tags(&all_tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("RunInstances", &e))?;
        maybe_crash_after_launch();
        out.instances().first().cloned().ok_or_else(|| {
            ProviderError::retryable("AWS RunInstances answered without an instance")
        })
    }
}

#[async_trait]
impl ExternalResource for Instance {
    fn schema(&self) -> KindSchema {
        let text = |d: &str| json!({"type": "string", "description": d});
        KindSchema {
            group: "ec2.aws.plinth.dev".into(),
            version: "v1alpha1".into(),
            kind: "Instance".into(),
            plural: "instances".into(),
            description: "An Amazon EC2 instance.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "imageId": text("The AMI to launch, e.g. ami-0abcdef1234567890, or an SSM parameter naming one, e.g. resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64."),
                    "instanceType": text("The instance type, e.g. t3.micro."),
                    "subnetId": text("The VPC subnet to launch into; the default subnet when unset."),
                    "securityGroupIds": {"type": "array", "items": {"type": "string"}, "description": "VPC security groups for the instance."},
                    "keyName": text("The EC2 key pair for SSH."),
                    "userData": text("User data, as plain text (the provider base64-encodes it), e.g. a cloud-init script."),
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port the instance serves on, for the connection Secret."},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Tags for the instance."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "instanceId": {"type": "string"},
                    "state": {"type": "string"},
                    "instanceType": {"type": "string"},
                    "imageId": {"type": "string"},
                    "privateIp": {"type": "string"},
                    "publicIp": {"type": "string"},
                    "privateDnsName": {"type": "string"},
                    "publicDnsName": {"type": "string"},
                    "subnetId": {"type": "string"},
                    "vpcId": {"type": "string"},
                    "launchTime": {"type": "string"}
                }
            }),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: false,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let desired = match Desired::parse(&req.for_provider) {
            Ok(d) => d,
            Err(e) => return vec![(String::new(), e.to_string())],
        };
        let mut problems = Vec::new();
        match desired.image_id.as_deref() {
            None | Some("") => problems.push((
                "imageId".into(),
                "is required, e.g. ami-0abcdef1234567890".into(),
            )),
            Some(image) if !image.starts_with("ami-") && !image.starts_with(SSM_IMAGE_PREFIX) => {
                problems.push((
                    "imageId".into(),
                    format!("{image:?} is not an AMI id (ami-...) or an SSM parameter (resolve:ssm:...)"),
                ))
            }
            _ => {}
        }
        if desired.instance_type.as_deref().is_none_or(str::is_empty) {
            problems.push(("instanceType".into(), "is required, e.g. t3.micro".into()));
        }
        if desired
            .user_data
            .as_ref()
            .is_some_and(|d| d.len() > 16 * 1024)
        {
            problems.push(("userData".into(), "is over EC2's 16 KiB limit".into()));
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let Some(instance) = self.find(&clients, req).await? else {
            return Ok(Observation::absent());
        };
        let Some((ready, message)) = readiness(state(&instance)) else {
            return Ok(Observation::absent());
        };
        let mut observation = Observation::available(at_provider(&instance))
            .with_diff(differences(&desired, &instance).join("; "))
            .with_connection(connection(&desired, &instance))
            .with_readiness(ready, message);
        if ready == Readiness::Deleting {
            observation.up_to_date = true;
        }
        if req.external_name.is_empty() {
            if let Some(id) = instance.instance_id() {
                observation = observation.found_as(id);
            }
        }
        let fields = late_init(&desired, &instance);
        if !fields.is_empty() {
            observation = observation.with_late_init(Value::Object(fields));
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        // A retried Create: the first launch is the one, unless it is on
        // its way out (terminated outside Plinth), when a new one is due.
        let existing = self
            .by_uid(&clients, &req.uid)
            .await?
            .filter(|i| state(i) != "shutting-down");
        if let Some(existing) = existing {
            let id = existing.instance_id().unwrap_or_default().to_string();
            return Ok(Created {
                external_name: id,
                connection: connection(&desired, &existing),
            });
        }
        let mut launched = self
            .launch(&clients, req, &desired, client_token(&req.uid, None))
            .await?;
        if readiness(state(&launched)).is_none_or(|(r, _)| r == Readiness::Deleting) {
            // AWS answered with the token's earlier, since terminated launch.
            let previous = launched.instance_id().unwrap_or_default().to_string();
            launched = self
                .launch(
                    &clients,
                    req,
                    &desired,
                    client_token(&req.uid, Some(&previous)),
                )
                .await?;
        }
        let id = launched.instance_id().unwrap_or_default().to_string();
        tracing::info!(name = %req.name, instance = %id, "launched");
        Ok(Created {
            external_name: id,
            connection: connection(&desired, &launched),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let Some(instance) = self.find(&clients, req).await? else {
            return Err(ProviderError::retryable(format!(
                "instance {} vanished before the update",
                req.external_name
            )));
        };
        let id = instance.instance_id().unwrap_or_default().to_string();
        let (set, remove) = tags::changes(&desired.tags, &observed_tags(&instance));
        if !set.is_empty() {
            clients
                .ec2
                .create_tags()
                .resources(&id)
                .set_tags(Some(ec2_tags(&set)))
                .send()
                .await
                .map_err(|e| classify("CreateTags", &e))?;
        }
        if !remove.is_empty() {
            clients
                .ec2
                .delete_tags()
                .resources(&id)
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| Tag::builder().key(k).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| classify("DeleteTags", &e))?;
        }
        if let Some(want) = &desired.security_group_ids {
            let mut sorted = want.clone();
            sorted.sort();
            if sorted != security_groups(&instance) {
                clients
                    .ec2
                    .modify_instance_attribute()
                    .instance_id(&id)
                    .set_groups(Some(want.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("ModifyInstanceAttribute", &e))?;
            }
        }
        let current_type = instance.instance_type().map_or("", |t| t.as_str());
        let wants_type = desired
            .instance_type
            .as_deref()
            .filter(|want| *want != current_type);
        // EC2 changes an instance's type only while it is stopped: stop it,
        // change the type once it has stopped (a later cycle), start it.
        match (state(&instance), wants_type) {
            ("running", Some(_)) => {
                clients
                    .ec2
                    .stop_instances()
                    .instance_ids(&id)
                    .send()
                    .await
                    .map_err(|e| classify("StopInstances", &e))?;
            }
            ("stopped", Some(want)) => {
                clients
                    .ec2
                    .modify_instance_attribute()
                    .instance_id(&id)
                    .instance_type(AttributeValue::builder().value(want).build())
                    .send()
                    .await
                    .map_err(|e| classify("ModifyInstanceAttribute", &e))?;
                self.start(&clients, &id).await?;
            }
            ("stopped", None) => self.start(&clients, &id).await?,
            // pending or stopping: the next cycle carries on.
            _ => {}
        }
        let fixed = immutable_changes(&desired, &instance);
        if !fixed.is_empty() {
            return Err(ProviderError::terminal(format!(
                "{}: delete and re-create the resource for that, or put the spec back",
                fixed.join("; ")
            )));
        }
        Ok(connection(&desired, &instance))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let Some(instance) = self.find(&clients, req).await? else {
            return Ok(());
        };
        if matches!(state(&instance), "shutting-down" | "terminated") {
            return Ok(());
        }
        let id = instance.instance_id().unwrap_or_default();
        match clients
            .ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("InvalidInstanceID.NotFound") => Ok(()),
            Err(e) => Err(classify("TerminateInstances", &e)),
        }
    }
}

impl Instance {
    async fn start(&self, clients: &Clients, id: &str) -> Result<(), ProviderError> {
        clients
            .ec2
            .start_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| classify("StartInstances", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{GroupIdentifier, InstanceState, InstanceStateName};

    #[test]
    fn states_map_to_readiness() {
        let cases = [
            ("running", Some(Readiness::Available)),
            ("pending", Some(Readiness::Creating)),
            ("stopping", Some(Readiness::Unavailable)),
            ("stopped", Some(Readiness::Unavailable)),
            ("shutting-down", Some(Readiness::Deleting)),
            ("terminated", None),
        ];
        for (state, want) in cases {
            let got = readiness(state);
            assert_eq!(got.as_ref().map(|(r, _)| *r), want, "{state}");
            if let Some((r, message)) = got {
                if r != Readiness::Available {
                    assert!(message.contains(state), "{message} names {state}");
                }
            }
        }
    }

    #[test]
    fn client_tokens_are_stable_and_fit_ec2() {
        let uid = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
        assert_eq!(client_token(uid, None), client_token(uid, None));
        assert_ne!(client_token(uid, None), client_token("other", None));
        assert_ne!(client_token(uid, None), client_token(uid, Some("i-1")));
        assert!(client_token(uid, None).len() <= 64);
        assert!(client_token(uid, Some("i-1")).len() <= 64);
    }

    fn instance(state: InstanceStateName, type_: &str) -> Observed {
        Observed::builder()
            .instance_id("i-0123")
            .image_id("ami-1")
            .state(InstanceState::builder().name(state).build())
            .instance_type(InstanceType::from(type_))
            .private_ip_address("10.0.0.5")
            .security_groups(GroupIdentifier::builder().group_id("sg-1").build())
            .tags(Tag::builder().key("team").value("web").build())
            .tags(Tag::builder().key(tags::UID).value("u-1").build())
            .build()
    }

    #[test]
    fn differences_compare_type_groups_and_tags() {
        let running = instance(InstanceStateName::Running, "t3.micro");
        let same = Desired::parse(&json!({"imageId": "ami-1", "instanceType": "t3.micro", "securityGroupIds": ["sg-1"], "tags": {"team": "web"}})).expect("spec");
        assert_eq!(differences(&same, &running), Vec::<String>::new());
        let changed = Desired::parse(
            &json!({"instanceType": "t3.large", "securityGroupIds": ["sg-2"], "tags": {}}),
        )
        .expect("spec");
        let diff = differences(&changed, &running).join("; ");
        for field in ["instanceType", "securityGroupIds", "tags"] {
            assert!(diff.contains(field), "{diff} names {field}");
        }
        let moved = Desired::parse(&json!({"imageId": "ami-2", "keyName": "ops"})).expect("spec");
        let fixed = immutable_changes(&moved, &running);
        assert_eq!(fixed.len(), 2, "{fixed:?}");
        let ssm = Desired::parse(&json!({"imageId": "resolve:ssm:/aws/service/x"})).expect("spec");
        assert!(
            immutable_changes(&ssm, &running).is_empty(),
            "an SSM image is not compared"
        );
        let stopped = instance(InstanceStateName::Stopped, "t3.micro");
        assert!(
            !differences(&same, &stopped).is_empty(),
            "a stopped instance is started again"
        );
    }

    #[test]
    fn connection_prefers_the_public_address() {
        let spec = Desired::parse(&json!({"port": 8080})).expect("spec");
        let private = connection(&spec, &instance(InstanceStateName::Running, "t3.micro"));
        assert_eq!(String::from_utf8_lossy(&private["host"]), "10.0.0.5");
        assert_eq!(String::from_utf8_lossy(&private["port"]), "8080");
        let public = Observed::builder()
            .public_ip_address("54.1.2.3")
            .private_ip_address("10.0.0.5")
            .build();
        assert_eq!(
            String::from_utf8_lossy(&connection(&spec, &public)["host"]),
            "54.1.2.3"
        );
    }
}
