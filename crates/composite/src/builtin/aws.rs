//! The AWS Compositions of the built-in interfaces, labelled `provider: aws`:
//! `PostgreSQLInstance` as an RDS `DBInstance`, `ComputeInstance` as an EC2
//! `Instance`. A claim moves to AWS by `compositionSelector` alone.

use serde_json::{json, Value};

use super::GROUP;
use crate::names;

/// The DB instance class for each `size`.
pub const INSTANCE_CLASSES: [(&str, &str); 3] = [
    ("small", "db.t3.micro"),
    ("medium", "db.t3.medium"),
    ("large", "db.m5.large"),
];

/// The AMI a `ComputeInstance` without `image` launches: the newest Amazon
/// Linux 2023, through the public SSM parameter EC2 resolves in every region.
pub const DEFAULT_IMAGE: &str =
    "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// The smallest instance type with at least the claim's cpu and memory,
/// matched on `"<cpu>/<memoryMiB>"`, first match wins. Each regexp bounds the
/// memory in MiB: t3.micro to t3.large have 2 vCPUs and 1, 2, 4 and 8 GiB,
/// t3.xlarge 4 and 16, t3.2xlarge 8 and 32, m5.4xlarge 16 and 64, and
/// anything larger gets m5.8xlarge (32 vCPUs, 128 GiB).
pub const INSTANCE_TYPES: [(&str, &str); 7] = [
    ("^[12]/([0-9]{1,3}|10[01][0-9]|102[0-4])$", "t3.micro"),
    ("^[12]/(1[0-9]{3}|20[0-3][0-9]|204[0-8])$", "t3.small"),
    ("^[12]/([23][0-9]{3}|40[0-8][0-9]|409[0-6])$", "t3.medium"),
    ("^[12]/([4-7][0-9]{3}|80[0-9]{2}|81[0-8][0-9]|819[0-2])$", "t3.large"),
    ("^[1-4]/([0-9]{1,4}|1[0-5][0-9]{3}|16[0-2][0-9]{2}|163[0-7][0-9]|1638[0-4])$", "t3.xlarge"),
    ("^[1-8]/([0-9]{1,4}|[12][0-9]{4}|3[01][0-9]{3}|32[0-6][0-9]{2}|327[0-5][0-9]|3276[0-8])$", "t3.2xlarge"),
    ("^([1-9]|1[0-6])/([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-6])$", "m5.4xlarge"),
];
pub const LARGEST_INSTANCE_TYPE: &str = "m5.8xlarge";

fn composition(name: &str, composite_kind: &str, resource: Value) -> Value {
    json!({
        "apiVersion": format!("{}/{}", names::GROUP, names::VERSION),
        "kind": names::COMPOSITION_KIND,
        "metadata": {"name": name, "labels": {"provider": "aws"}},
        "spec": {
            "compositeTypeRef": {"apiVersion": format!("{GROUP}/v1alpha1"), "kind": composite_kind},
            "mode": "Resources",
            "resources": [resource]
        }
    })
}

/// `PostgreSQLInstance` → RDS: size → instance class, storageGB →
/// allocatedStorage, highAvailability → multiAZ, version → engineVersion.
pub fn dbaas() -> Value {
    let classes: serde_json::Map<String, Value> = INSTANCE_CLASSES
        .iter()
        .map(|(size, class)| (size.to_string(), json!(class)))
        .collect();
    composition(
        "postgresqlinstance-aws",
        "XPostgreSQLInstance",
        json!({
            "name": "rds",
            "base": {
                "apiVersion": "rds.aws.plinth.dev/v1alpha1",
                "kind": "DBInstance",
                "spec": {
                    "forProvider": {
                        "engine": "postgres",
                        "masterUsername": "postgres",
                        "storageType": "gp3",
                        "publiclyAccessible": false,
                        "skipFinalSnapshot": true
                    },
                    "providerConfigRef": {"name": "default"}
                }
            },
            "patches": [
                {"fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.forProvider.instanceClass",
                 "transforms": [{"type": "map", "map": classes}]},
                {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"},
                {"fromFieldPath": "spec.parameters.highAvailability", "toFieldPath": "spec.forProvider.multiAZ"},
                {"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.forProvider.engineVersion"},
                {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": "status.address"}
            ],
            "connectionDetails": [
                {"fromConnectionSecretKey": "host"}, {"fromConnectionSecretKey": "port"},
                {"fromConnectionSecretKey": "username"}, {"fromConnectionSecretKey": "password"},
                {"fromConnectionSecretKey": "database"}, {"fromConnectionSecretKey": "uri"},
                {"fromConnectionSecretKey": "connectionString"}
            ]
        }),
    )
}

/// `ComputeInstance` → EC2: cpu and memoryMiB → the smallest instance type
/// that has both, image → imageId, command → cloud-init user data that runs
/// it as it is, ports[0] → the connection Secret's port.
pub fn compute() -> Value {
    let patterns: Vec<Value> = INSTANCE_TYPES
        .iter()
        .map(|(regexp, result)| json!({"type": "regexp", "regexp": regexp, "result": result}))
        .collect();
    composition(
        "computeinstance-aws",
        "XComputeInstance",
        json!({
            "name": "instance",
            "base": {
                "apiVersion": "ec2.aws.plinth.dev/v1alpha1",
                "kind": "Instance",
                "spec": {
                    "forProvider": {"imageId": DEFAULT_IMAGE, "instanceType": "t3.micro"},
                    "providerConfigRef": {"name": "default"}
                }
            },
            "patches": [
                {"type": "CombineFromComposite",
                 "combine": {
                     "variables": [{"fromFieldPath": "spec.parameters.cpu"}, {"fromFieldPath": "spec.parameters.memoryMiB"}],
                     "strategy": "string",
                     "string": {"fmt": "%d/%d"}
                 },
                 "toFieldPath": "spec.forProvider.instanceType",
                 "transforms": [{"type": "match", "match": {"patterns": patterns, "fallbackValue": LARGEST_INSTANCE_TYPE}}]},
                {"fromFieldPath": "spec.parameters.image", "toFieldPath": "spec.forProvider.imageId"},
                // cloud-init runs a runcmd entry given as a list as that
                // exact argv, no shell in between; JSON is YAML's flow form.
                {"fromFieldPath": "spec.parameters.command", "toFieldPath": "spec.forProvider.userData",
                 "transforms": [
                     {"type": "string", "string": {"type": "Convert", "convert": "ToJson"}},
                     {"type": "string", "string": {"type": "Format", "fmt": "#cloud-config\nruncmd:\n  - %s\n"}}
                 ]},
                {"fromFieldPath": "spec.parameters.ports[0]", "toFieldPath": "spec.forProvider.port"},
                {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.privateIp", "toFieldPath": "status.address"},
                {"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.publicIp", "toFieldPath": "status.address"}
            ],
            "connectionDetails": [{"fromConnectionSecretKey": "host"}, {"fromConnectionSecretKey": "port"}]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each type's vCPUs and MiB, smallest first.
    const SIZES: [(&str, u32, u32); 8] = [
        ("t3.micro", 2, 1024),
        ("t3.small", 2, 2048),
        ("t3.medium", 2, 4096),
        ("t3.large", 2, 8192),
        ("t3.xlarge", 4, 16384),
        ("t3.2xlarge", 8, 32768),
        ("m5.4xlarge", 16, 65536),
        ("m5.8xlarge", 32, 131072),
    ];

    /// The instance type the Composition renders for a claim's cpu and memory.
    fn chosen(cpu: u32, memory: u32) -> String {
        let xr = json!({
            "apiVersion": format!("{GROUP}/v1alpha1"),
            "kind": "XComputeInstance",
            "metadata": {"name": "web"},
            "spec": {"parameters": {"cpu": cpu, "memoryMiB": memory, "command": ["sh", "-c", "echo 'hi there' > /tmp/x; exec sleep 9"], "ports": [8080]}}
        });
        let rendered =
            composition::render::render(&xr, &compute(), &Default::default()).expect("renders");
        let spec = &rendered.composed[0].object["spec"]["forProvider"];
        // ToJson escapes > as \u003e, as Go's encoder does; in a YAML
        // double-quoted string that is the escape for > again, so cloud-init
        // runs the same command.
        assert_eq!(
            spec["userData"],
            "#cloud-config\nruncmd:\n  - [\"sh\",\"-c\",\"echo 'hi there' \\u003e /tmp/x; exec sleep 9\"]\n"
        );
        assert_eq!(spec["port"], 8080);
        spec["instanceType"]
            .as_str()
            .expect("instanceType")
            .to_string()
    }

    #[test]
    fn instance_types_are_the_smallest_that_fit() {
        for cpu in [1, 2, 3, 4, 5, 8, 9, 16, 17, 32] {
            let edges = [
                1024, 1025, 2048, 2049, 4096, 8192, 8193, 16384, 16385, 32768, 32769, 65536, 65537,
            ];
            for memory in (64..=70_000).step_by(2999).chain(edges) {
                let want = SIZES
                    .iter()
                    .find(|(_, c, m)| *c >= cpu && *m >= memory)
                    .map_or(LARGEST_INSTANCE_TYPE, |(t, _, _)| t);
                assert_eq!(chosen(cpu, memory), want, "{cpu} vCPU, {memory} MiB");
            }
        }
    }

    #[test]
    fn a_postgresql_claim_maps_onto_rds() {
        let xr = json!({
            "apiVersion": format!("{GROUP}/v1alpha1"),
            "kind": "XPostgreSQLInstance",
            "metadata": {"name": "orders-x7k2p"},
            "spec": {"parameters": {"size": "medium", "storageGB": 50, "version": "16", "highAvailability": true}}
        });
        let rendered =
            composition::render::render(&xr, &dbaas(), &Default::default()).expect("renders");
        let object = &rendered.composed[0].object;
        assert_eq!(object["kind"], "DBInstance");
        let spec = &object["spec"]["forProvider"];
        assert_eq!(spec["instanceClass"], "db.t3.medium");
        assert_eq!(spec["allocatedStorage"], 50);
        assert_eq!(spec["multiAZ"], true);
        assert_eq!(spec["engineVersion"], "16");
        for c in [dbaas(), compute()] {
            assert_eq!(c["metadata"]["labels"]["provider"], "aws");
        }
    }
}
