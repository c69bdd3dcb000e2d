//! The clouds' Compositions of the built-in interfaces: data that lives with
//! each provider (`providers/<cloud>/compositions/*.yaml`), compiled into the
//! binary so `plinth up` installs them with the XRDs. A claim moves between
//! backends by `compositionSelector` alone: `provider: aws`, `gcp` or
//! `azure`.

use anyhow::{Context, Result};
use serde_json::Value;

/// Each Composition's file, and its text.
const FILES: [(&str, &str); 6] = [
    (
        "providers/aws/compositions/postgresqlinstance-aws.yaml",
        include_str!("../../../providers/aws/compositions/postgresqlinstance-aws.yaml"),
    ),
    (
        "providers/aws/compositions/computeinstance-aws.yaml",
        include_str!("../../../providers/aws/compositions/computeinstance-aws.yaml"),
    ),
    (
        "providers/gcp/compositions/postgresqlinstance-gcp.yaml",
        include_str!("../../../providers/gcp/compositions/postgresqlinstance-gcp.yaml"),
    ),
    (
        "providers/gcp/compositions/computeinstance-gcp.yaml",
        include_str!("../../../providers/gcp/compositions/computeinstance-gcp.yaml"),
    ),
    (
        "providers/azure/compositions/postgresqlinstance-azure.yaml",
        include_str!("../../../providers/azure/compositions/postgresqlinstance-azure.yaml"),
    ),
    (
        "providers/azure/compositions/computeinstance-azure.yaml",
        include_str!("../../../providers/azure/compositions/computeinstance-azure.yaml"),
    ),
];

/// Every cloud Composition, parsed.
pub fn cloud() -> Result<Vec<Value>> {
    FILES
        .iter()
        .map(|(file, text)| {
            serde_saphyr::from_str::<Value>(text)
                .with_context(|| format!("cannot parse the built-in Composition {file}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn composition(name: &str) -> Value {
        cloud()
            .expect("the built-in Compositions parse")
            .into_iter()
            .find(|c| c["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Composition {name}"))
    }

    /// Each machine's vCPUs and MiB, smallest first, with the AWS and the
    /// Google Cloud type of that size.
    const SIZES: [(&str, &str, u32, u32); 8] = [
        ("t3.micro", "e2-micro", 2, 1024),
        ("t3.small", "e2-small", 2, 2048),
        ("t3.medium", "e2-medium", 2, 4096),
        ("t3.large", "e2-standard-2", 2, 8192),
        ("t3.xlarge", "e2-standard-4", 4, 16384),
        ("t3.2xlarge", "e2-standard-8", 8, 32768),
        ("m5.4xlarge", "e2-standard-16", 16, 65536),
        ("m5.8xlarge", "e2-standard-32", 32, 131072),
    ];

    /// Azure's B-series, which starts at one vCPU.
    const AZURE_SIZES: [(&str, u32, u32); 8] = [
        ("Standard_B1s", 1, 1024),
        ("Standard_B1ms", 1, 2048),
        ("Standard_B2s", 2, 4096),
        ("Standard_B2ms", 2, 8192),
        ("Standard_B4ms", 4, 16384),
        ("Standard_B8ms", 8, 32768),
        ("Standard_B16ms", 16, 65536),
        ("Standard_D32s_v5", 32, 131072),
    ];

    fn compute_claim(cpu: u32, memory: u32) -> Value {
        json!({
            "apiVersion": "platform.plinth.dev/v1alpha1",
            "kind": "XComputeInstance",
            "metadata": {"name": "web"},
            "spec": {"parameters": {"cpu": cpu, "memoryMiB": memory, "command": ["sh", "-c", "echo 'hi there' > /tmp/x; exec sleep 9"], "ports": [8080]}}
        })
    }

    fn render(xr: &Value, composition: &Value) -> Value {
        let rendered =
            composition::render::render(xr, composition, &Default::default()).expect("renders");
        rendered.composed[0].object.clone()
    }

    /// ToJson escapes > as \u003e, as Go's encoder does; in a YAML
    /// double-quoted string that is the escape for > again, so cloud-init
    /// runs the same command.
    const USER_DATA: &str = "#cloud-config\nruncmd:\n  - [\"sh\",\"-c\",\"echo 'hi there' \\u003e /tmp/x; exec sleep 9\"]\n";

    #[test]
    fn machine_types_are_the_smallest_that_fit_on_every_cloud() {
        let aws = composition("computeinstance-aws");
        let gcp = composition("computeinstance-gcp");
        let azure = composition("computeinstance-azure");
        for cpu in [1, 2, 3, 4, 5, 8, 9, 16, 17, 32] {
            let edges = [
                1024, 1025, 2048, 2049, 4096, 8192, 8193, 16384, 16385, 32768, 32769, 65536, 65537,
            ];
            for memory in (64..=70_000).step_by(2999).chain(edges) {
                let fit = SIZES.iter().find(|(_, _, c, m)| *c >= cpu && *m >= memory);
                let (want_aws, want_gcp) =
                    fit.map_or(("m5.8xlarge", "e2-standard-32"), |(a, g, _, _)| (*a, *g));
                let on_aws = render(&compute_claim(cpu, memory), &aws);
                assert_eq!(
                    on_aws["spec"]["forProvider"]["instanceType"], want_aws,
                    "AWS, {cpu} vCPU, {memory} MiB"
                );
                let on_gcp = render(&compute_claim(cpu, memory), &gcp);
                assert_eq!(
                    on_gcp["spec"]["forProvider"]["machineType"], want_gcp,
                    "GCP, {cpu} vCPU, {memory} MiB"
                );
                let want_azure = AZURE_SIZES
                    .iter()
                    .find(|(_, c, m)| *c >= cpu && *m >= memory)
                    .map_or("Standard_D32s_v5", |(t, _, _)| *t);
                let on_azure = render(&compute_claim(cpu, memory), &azure);
                assert_eq!(
                    on_azure["spec"]["forProvider"]["vmSize"], want_azure,
                    "Azure, {cpu} vCPU, {memory} MiB"
                );
            }
        }
        let on_aws = render(&compute_claim(1, 512), &aws);
        assert_eq!(on_aws["spec"]["forProvider"]["userData"], USER_DATA);
        assert_eq!(on_aws["spec"]["forProvider"]["port"], 8080);
        let on_gcp = render(&compute_claim(1, 512), &gcp);
        assert_eq!(on_gcp["kind"], "Instance");
        assert_eq!(
            on_gcp["spec"]["forProvider"]["metadata"]["user-data"], USER_DATA,
            "the same cloud-init as on AWS"
        );
        assert_eq!(on_gcp["spec"]["forProvider"]["port"], 8080);
        let on_azure = render(&compute_claim(1, 512), &azure);
        assert_eq!(on_azure["kind"], "VirtualMachine");
        assert_eq!(
            on_azure["spec"]["forProvider"]["customData"], USER_DATA,
            "the same cloud-init again"
        );
        assert_eq!(on_azure["spec"]["forProvider"]["port"], 8080);
    }

    #[test]
    fn a_postgresql_claim_maps_onto_a_flexible_server() {
        let composition = composition("postgresqlinstance-azure");
        let cases = [
            (
                "small",
                20,
                "15",
                false,
                "Standard_B1ms",
                "Burstable",
                32,
                "Disabled",
            ),
            (
                "medium",
                33,
                "16",
                true,
                "Standard_D2ds_v5",
                "GeneralPurpose",
                64,
                "ZoneRedundant",
            ),
            (
                "large",
                512,
                "17",
                false,
                "Standard_D4ds_v5",
                "GeneralPurpose",
                512,
                "Disabled",
            ),
            (
                "large",
                1025,
                "17",
                false,
                "Standard_D4ds_v5",
                "GeneralPurpose",
                2048,
                "Disabled",
            ),
        ];
        for (size, storage, version, ha, sku, tier, storage_size, availability) in cases {
            let object = render(&postgres_claim(size, storage, version, ha), &composition);
            assert_eq!(object["kind"], "PostgreSQLFlexibleServer");
            let spec = &object["spec"]["forProvider"];
            assert_eq!(spec["sku"], json!({"name": sku, "tier": tier}), "{size}");
            assert_eq!(
                spec["storageSizeGb"], storage_size,
                "{storage} GB fits in the next size a flexible server takes"
            );
            assert_eq!(spec["version"], version);
            assert_eq!(spec["highAvailability"], availability);
        }
    }

    fn postgres_claim(size: &str, storage: u32, version: &str, ha: bool) -> Value {
        json!({
            "apiVersion": "platform.plinth.dev/v1alpha1",
            "kind": "XPostgreSQLInstance",
            "metadata": {"name": "orders-x7k2p"},
            "spec": {"parameters": {"size": size, "storageGB": storage, "version": version, "highAvailability": ha}}
        })
    }

    #[test]
    fn a_postgresql_claim_maps_onto_rds() {
        let object = render(
            &postgres_claim("medium", 50, "16", true),
            &composition("postgresqlinstance-aws"),
        );
        assert_eq!(object["kind"], "DBInstance");
        let spec = &object["spec"]["forProvider"];
        assert_eq!(spec["instanceClass"], "db.t3.medium");
        assert_eq!(spec["allocatedStorage"], 50);
        assert_eq!(spec["multiAZ"], true);
        assert_eq!(spec["engineVersion"], "16");
    }

    #[test]
    fn a_postgresql_claim_maps_onto_cloud_sql() {
        let composition = composition("postgresqlinstance-gcp");
        let cases = [
            (
                "small",
                20,
                "15",
                false,
                "db-custom-1-3840",
                "POSTGRES_15",
                "ZONAL",
            ),
            (
                "medium",
                50,
                "16",
                true,
                "db-custom-2-7680",
                "POSTGRES_16",
                "REGIONAL",
            ),
            (
                "large",
                100,
                "17",
                false,
                "db-custom-4-15360",
                "POSTGRES_17",
                "ZONAL",
            ),
        ];
        for (size, storage, version, ha, tier, database_version, availability) in cases {
            let object = render(&postgres_claim(size, storage, version, ha), &composition);
            assert_eq!(object["apiVersion"], "sql.gcp.plinth.dev/v1alpha1");
            assert_eq!(object["kind"], "DatabaseInstance");
            let spec = &object["spec"]["forProvider"];
            assert_eq!(spec["tier"], tier, "{size}");
            assert_eq!(spec["diskSizeGb"], storage, "{size}");
            assert_eq!(spec["databaseVersion"], database_version, "{size}");
            assert_eq!(spec["availabilityType"], availability, "{size}");
            assert_eq!(
                spec["edition"], "ENTERPRISE",
                "db-custom tiers are Enterprise edition's"
            );
        }
    }

    #[test]
    fn every_cloud_composition_is_labelled_with_its_provider_and_serves_both_interfaces() {
        for cloud in ["aws", "gcp", "azure"] {
            for interface in ["postgresqlinstance", "computeinstance"] {
                let c = composition(&format!("{interface}-{cloud}"));
                assert_eq!(c["metadata"]["labels"]["provider"], cloud);
                assert_eq!(c["kind"], "Composition");
            }
        }
    }
}
