//! The integration tests: one test binary (as ripgrep's), one module per concern, so the suite
//! links once instead of once per file. Every `tests/tests/*.rs` must be declared here; the test
//! below fails when one is not, since `autotests = false` would otherwise silently skip it.

mod account;
mod bad_input;
mod benign_catches;
mod cli;
mod control_access;
mod crash_states;
mod cross_backend;
mod determinism;
mod disk;
mod dns;
mod doc_snippets;
mod durability;
mod explore;
mod explore_seccomp;
mod explore_system;
mod file_calls;
mod http_curl;
mod invariants;
mod k8s_manifests;
mod log_integrity;
mod log_privdrop;
mod new_user;
mod output_and_signals;
mod per_connection;
mod power_loss;
mod process_chaos;
mod process_keys;
mod process_safety;
mod quirks;
mod read_grid;
mod real_etcd;
mod real_systems;
mod realism;
mod refusals;
mod refused_runs;
mod regression;
mod repro_tools;
mod runtime_control;
mod seccomp;
mod seccomp_durability;
mod seccomp_files;
mod seccomp_systems;
mod seccomp_toxics;
mod seeing_a_run;
mod signals;
mod stalls;
mod targeting;
mod toxics;
mod toxiproxy;
mod toxiproxy_inproc;
mod toxiproxy_seccomp;
mod udp;
mod validate_warnings;

#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let here = chaos_tests::workspace_root().join("tests/tests");
    let declared = include_str!("main.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&here).expect("tests/tests") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if let Some(module) = name.strip_suffix(".rs")
            && module != "main"
            && !declared.contains(&format!("\nmod {module};\n"))
        {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "not declared in tests/tests/main.rs: {missing:?}"
    );
}
