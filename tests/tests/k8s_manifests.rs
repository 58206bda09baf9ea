//! The Kubernetes manifests in examples/k8s parse as YAML (Debian's python3-yaml, the only YAML
//! reader installed), have the fields a cluster requires, agree on their paths, and their policy
//! is one chaos accepts. They are not run on a cluster here.

use chaos_tests::*;
use serde_json::Value;
use std::process::Command;

/// The documents of a YAML file, as JSON.
fn documents(name: &str) -> Vec<Value> {
    let path = workspace_root().join("examples/k8s").join(name);
    let python = "/usr/bin/python3";
    let r = run(
        Command::new(python).args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(&path),
        30,
    );
    assert_eq!(
        r.code(),
        Some(0),
        "{python} with python3-yaml: {}",
        r.describe()
    );
    serde_json::from_str::<Vec<Value>>(&r.stdout).unwrap()
}

#[test]
fn the_shim_pod_preloads_what_its_init_container_copies() {
    let docs = documents("shim-pod.yaml");
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let pod = docs.iter().find(|d| d["kind"] == "Pod").unwrap();
    assert_eq!(pod["apiVersion"], "v1");
    let init = &pod["spec"]["initContainers"][0];
    let copied = init["command"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    let app = &pod["spec"]["containers"][0];
    let env = |name: &str| {
        app["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{name} in the pod's env"))
            .to_string()
    };
    assert_eq!(
        env("LD_PRELOAD"),
        copied,
        "the app preloads the copied shim"
    );
    // Every mount names a volume of the pod, and the paths the env points into are mounted.
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mounts: Vec<(String, String)> = app["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["mountPath"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (name, _) in &mounts {
        assert!(volumes.contains(&name.as_str()), "{name}");
    }
    for var in ["LD_PRELOAD", "CHAOS_POLICY", "CHAOS_LOG"] {
        let value = env(var);
        assert!(
            mounts.iter().any(|(_, p)| value.starts_with(p.as_str())),
            "{var}={value}"
        );
    }
    // The ConfigMap's policy is one chaos accepts.
    let dir = TempDir::new("k8s-policy");
    let policy = dir.write(
        "policy.toml",
        config["data"]["policy.toml"].as_str().unwrap(),
    );
    let r = run(Command::new(&bins().ctl).arg("validate").arg(&policy), 20);
    assert_eq!(r.code(), Some(0), "{}", r.describe());
}

#[test]
fn the_sweep_job_shards_by_completion_index() {
    let docs = documents("sweep-job.yaml");
    let job = &docs[0];
    assert_eq!(
        (job["apiVersion"].as_str(), job["kind"].as_str()),
        (Some("batch/v1"), Some("Job"))
    );
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let n = job["spec"]["completions"].as_u64().unwrap();
    let script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(script.contains("$JOB_COMPLETION_INDEX"), "{script}");
    assert!(
        script.contains(&format!("/{n}\"")),
        "shards of {n}: {script}"
    );
    assert!(script.contains("chaos-ctl sweep"), "{script}");
}
