//! `VirtualMachine.compute.azure.plinth.dev`: an Azure virtual machine
//! (`Microsoft.Compute/virtualMachines`, api-version 2024-03-01, GA) with
//! the network interface it needs (`Microsoft.Network/networkInterfaces`,
//! 2023-09-01), named `<vm>-nic` and made first, in the subnet the spec
//! or the ProviderConfig names. The interface and the OS disk are attached
//! with `deleteOption: Delete`, so deleting the machine deletes them too.
//!
//! One gap: a resource deleted in the reconcile between its interface being
//! made and its machine being put leaves the interface behind.

use base64::Engine as _;
use provider_sdk::{ConnectionDetails, KindSchema, ProviderError, Readiness, Request};
use serde_json::{json, Map, Value};

use crate::operations::Operations;
use crate::resource::{password, provisioning_readiness, tags, ArmKind, Place};

pub const GROUP: &str = "compute.azure.plinth.dev";
pub const API_VERSION: &str = "2024-03-01";
pub const NETWORK_API_VERSION: &str = "2023-09-01";

pub const CONNECTION_KEYS: [&str; 2] = ["host", "port"];

/// The image a machine boots when the spec names none: Ubuntu 24.04 LTS,
/// which runs cloud-init.
pub const DEFAULT_IMAGE: &str = "Canonical:ubuntu-24_04-lts:server:latest";

pub struct VirtualMachine;

fn text<'a>(req: &'a Request, field: &str) -> Option<&'a str> {
    req.field(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn nic_id(req: &Request, place: &Place) -> String {
    place.id(&format!(
        "Microsoft.Network/networkInterfaces/{}-nic",
        req.external_name_or_name()
    ))
}

fn admin(req: &Request) -> &str {
    text(req, "adminUsername").unwrap_or("plinth")
}

/// `Publisher:Offer:Sku:Version`, as `az vm create --image` takes it.
fn image(req: &Request) -> Result<Value, ProviderError> {
    if let Some(reference) = req.field("imageReference") {
        return Ok(reference.clone());
    }
    let urn = text(req, "imageUrn").unwrap_or(DEFAULT_IMAGE);
    let parts: Vec<&str> = urn.split(':').collect();
    let [publisher, offer, sku, version] = parts[..] else {
        return Err(ProviderError::terminal(format!(
            "spec.forProvider.imageUrn {urn:?} is not Publisher:Offer:Sku:Version, e.g. {DEFAULT_IMAGE}"
        )));
    };
    Ok(json!({"publisher": publisher, "offer": offer, "sku": sku, "version": version}))
}

fn subnet(req: &Request, place: &Place) -> Result<String, ProviderError> {
    text(req, "subnetId")
        .map(str::to_string)
        .or_else(|| place.clients.subnet.clone())
        .ok_or_else(|| {
            ProviderError::terminal(
                "spec.forProvider.subnetId is required (or set spec.subnetID on the ProviderConfig): the subnet the machine's network interface goes in",
            )
        })
}

#[provider_sdk::async_trait]
impl ArmKind for VirtualMachine {
    fn schema(&self) -> KindSchema {
        let text = |d: &str| json!({"type": "string", "description": d});
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "VirtualMachine".into(),
            plural: "virtualmachines".into(),
            description: "An Azure virtual machine with its network interface.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "resourceGroupName": text("The resource group; the ProviderConfig's resourceGroupName when unset."),
                    "location": text("The Azure region; the ProviderConfig's location when unset."),
                    "vmSize": text("The size, e.g. Standard_B2s."),
                    "imageUrn": text("Publisher:Offer:Sku:Version, e.g. Canonical:ubuntu-24_04-lts:server:latest (the default)."),
                    "imageReference": {"type": "object", "description": "The image as ARM names it, instead of imageUrn.",
                        "properties": {"publisher": {"type": "string"}, "offer": {"type": "string"}, "sku": {"type": "string"}, "version": {"type": "string"}, "id": {"type": "string"}}},
                    "subnetId": text("The subnet's resource id; the ProviderConfig's subnetID when unset."),
                    "adminUsername": text("The administrator; plinth when unset."),
                    "sshPublicKey": text("An OpenSSH public key for the administrator; without it a password is generated and password login allowed."),
                    "customData": text("Plain text (e.g. a cloud-init #cloud-config) the machine reads at first boot; the provider encodes it."),
                    "osDiskType": {"type": "string", "enum": ["Standard_LRS", "StandardSSD_LRS", "Premium_LRS"], "description": "Standard_LRS when unset."},
                    "osDiskSizeGb": {"type": "integer", "minimum": 30},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port the connection Secret names."}
                }
            }),
            at_provider: json!({"type": "object", "properties": {
                "provisioningState": {"type": "string"}, "vmId": {"type": "string"}, "vmSize": {"type": "string"},
                "privateIp": {"type": "string"}, "id": {"type": "string"}
            }}),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError> {
        Ok(place.id(&format!(
            "Microsoft.Compute/virtualMachines/{}",
            req.external_name_or_name()
        )))
    }

    fn body(&self, req: &Request, place: &Place) -> Result<Value, ProviderError> {
        let size = text(req, "vmSize").ok_or_else(|| {
            ProviderError::terminal("spec.forProvider.vmSize is required, e.g. Standard_B2s")
        })?;
        let mut os_disk = json!({
            "createOption": "FromImage",
            "deleteOption": "Delete",
            "managedDisk": {"storageAccountType": text(req, "osDiskType").unwrap_or("Standard_LRS")},
        });
        if let Some(size) = req.field("osDiskSizeGb") {
            os_disk["diskSizeGB"] = size.clone();
        }
        let name = req.external_name_or_name();
        let mut os_profile = Map::new();
        os_profile.insert(
            "computerName".into(),
            json!(name.chars().take(64).collect::<String>()),
        );
        os_profile.insert("adminUsername".into(), json!(admin(req)));
        match text(req, "sshPublicKey") {
            Some(key) => {
                os_profile.insert(
                    "linuxConfiguration".into(),
                    json!({"disablePasswordAuthentication": true, "ssh": {"publicKeys": [
                        {"path": format!("/home/{}/.ssh/authorized_keys", admin(req)), "keyData": key}
                    ]}}),
                );
            }
            None => {
                os_profile.insert(
                    "adminPassword".into(),
                    json!(password(req, "adminPasswordSecretRef", "admin-password")?),
                );
                os_profile.insert(
                    "linuxConfiguration".into(),
                    json!({"disablePasswordAuthentication": false}),
                );
            }
        }
        if let Some(data) = text(req, "customData") {
            os_profile.insert(
                "customData".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(data)),
            );
        }
        Ok(json!({
            "location": place.location,
            "tags": tags(req),
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {"imageReference": image(req)?, "osDisk": os_disk},
                "osProfile": os_profile,
                "networkProfile": {"networkInterfaces": [
                    {"id": nic_id(req, place), "properties": {"primary": true, "deleteOption": "Delete"}}
                ]}
            }
        }))
    }

    /// ARM never shows the OS profile's secrets or custom data back, and
    /// fills in the disk; the size, image, interface and tags are compared.
    fn compared(&self, mut body: Value) -> Value {
        if let Some(properties) = body.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove("osProfile");
            if let Some(storage) = properties
                .get_mut("storageProfile")
                .and_then(Value::as_object_mut)
            {
                storage.remove("osDisk");
            }
        }
        body
    }

    fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if text(req, "vmSize").is_none() {
            problems.push(("vmSize".into(), "is required, e.g. Standard_B2s".into()));
        }
        if let Err(e) = image(req) {
            problems.push(("imageUrn".into(), e.to_string()));
        }
        let name = req.external_name_or_name();
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            problems.push(("metadata.name".into(), format!("{name:?} is not a Linux virtual machine name: 1 to 64 letters, digits and hyphens")));
        }
        problems
    }

    fn readiness(&self, observed: &Value) -> (Readiness, String) {
        provisioning_readiness(observed)
    }

    fn at_provider(&self, observed: &Value) -> Value {
        json!({
            "provisioningState": observed.pointer("/properties/provisioningState"),
            "vmId": observed.pointer("/properties/vmId"),
            "vmSize": observed.pointer("/properties/hardwareProfile/vmSize"),
            "privateIp": observed.pointer("/plinth/privateIp"),
            "id": observed.get("id"),
        })
    }

    fn connection(
        &self,
        req: &Request,
        observed: Option<&Value>,
    ) -> Result<ConnectionDetails, ProviderError> {
        let mut details = ConnectionDetails::new();
        if let Some(host) = observed
            .and_then(|o| o.pointer("/plinth/privateIp"))
            .and_then(Value::as_str)
        {
            details.insert("host".into(), host.as_bytes().to_vec());
        }
        if let Some(port) = req.field("port").and_then(Value::as_i64) {
            details.insert("port".into(), port.to_string().into_bytes());
        }
        Ok(details)
    }

    fn immutable(&self, want: &Value, have: &Value) -> Vec<String> {
        let image = |v: &Value| {
            v.pointer("/properties/storageProfile/imageReference")
                .cloned()
        };
        let mut fixed = Vec::new();
        if let (Some(w), Some(h)) = (image(want), image(have)) {
            let mut diff = Vec::new();
            provider_sdk::diff::differences("image", &w, &h, &[], &mut diff);
            if !diff.is_empty() {
                fixed.push(format!(
                    "{}: a machine cannot change its image",
                    diff.join(", ")
                ));
            }
        }
        fixed
    }

    async fn prepare(
        &self,
        req: &Request,
        place: &Place<'_>,
        operations: &Operations,
    ) -> Result<Option<String>, ProviderError> {
        let arm = &place.clients.arm;
        let id = nic_id(req, place);
        if let Some(nic) = arm.get(&id, NETWORK_API_VERSION).await? {
            let (ready, message) = provisioning_readiness(&nic);
            return Ok((ready != Readiness::Available)
                .then(|| format!("the network interface: {message}")));
        }
        let body = json!({
            "location": place.location,
            "tags": tags(req),
            "properties": {"ipConfigurations": [{
                "name": "primary",
                "properties": {"subnet": {"id": subnet(req, place)?}, "privateIPAllocationMethod": "Dynamic", "primary": true}
            }]}
        });
        let written = arm.put(&id, NETWORK_API_VERSION, &body).await?;
        let waiting = written.poll.is_some()
            && provisioning_readiness(&written.body).0 != Readiness::Available;
        operations.track(&req.uid, "create the network interface", written.poll);
        Ok(waiting.then(|| "creating the network interface".to_string()))
    }

    async fn enrich(
        &self,
        req: &Request,
        place: &Place<'_>,
        mut observed: Value,
    ) -> Result<Value, ProviderError> {
        let nic = place
            .clients
            .arm
            .get(&nic_id(req, place), NETWORK_API_VERSION)
            .await?;
        let ip = nic
            .as_ref()
            .and_then(|n| n.pointer("/properties/ipConfigurations/0/properties/privateIPAddress"))
            .cloned();
        if let (Some(ip), Some(fields)) = (ip, observed.as_object_mut()) {
            fields.insert("plinth".into(), json!({"privateIp": ip}));
        }
        Ok(observed)
    }
}
