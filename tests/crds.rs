//! The checked-in `crds/` is exactly what `plinth crds` writes, so a change
//! to a kind's schema that is not regenerated fails here.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".yaml").then(|| {
                let text = std::fs::read_to_string(e.path()).expect("read a CRD file");
                (name, text)
            })
        })
        .collect()
}

#[test]
fn the_checked_in_crds_are_what_plinth_crds_writes() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = std::process::Command::new(support::plinth_bin())
        .args(["crds", "--output"])
        .arg(out.path())
        .output()
        .expect("run plinth crds");
    assert!(
        run.status.success(),
        "plinth crds failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let generated = yaml_files(out.path());
    let checked_in = yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds"));
    for kind in [
        "providers.pkg.plinth.dev.yaml",
        "functions.pkg.crossplane.io.yaml",
        "compositeresourcedefinitions.apiextensions.crossplane.io.yaml",
        "compositions.apiextensions.crossplane.io.yaml",
        "compositionrevisions.apiextensions.crossplane.io.yaml",
        "providerconfigs.nop.plinth.dev.yaml",
        "nopresources.nop.plinth.dev.yaml",
    ] {
        assert!(generated.contains_key(kind), "plinth crds wrote no {kind}");
    }
    let stale: Vec<&String> = generated
        .iter()
        .filter(|(name, text)| checked_in.get(*name) != Some(text))
        .map(|(name, _)| name)
        .chain(checked_in.keys().filter(|n| !generated.contains_key(*n)))
        .collect();
    assert!(
        stale.is_empty(),
        "crds/ differs from what plinth crds writes in {stale:?}; regenerate it with `cargo run -p plinth -- crds --output crds`"
    );
}
