//! The echo task on burn's wgpu backend, end to end. On a machine without a GPU this runs on
//! Mesa's software Vulkan driver (lavapipe), which `.ci/run` installs. Without the `wgpu`
//! feature these tests are ignored (`cargo test` lists them so); with it, a missing adapter
//! fails them.

mod common;
use serde_json::Value;

#[test]
#[cfg_attr(
    not(feature = "wgpu"),
    ignore = "needs the wgpu feature: cargo test --release --features wgpu"
)]
fn echo_trains_on_wgpu() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gpu.json"),
        r#"{"task": {"kind": "echo", "train_steps": 20, "eval_samples": 10},
            "model": {"kind": "attention", "hidden": 16}, "backend": "wgpu", "repeats": 2}"#,
    )
    .unwrap();
    let out = common::attnx(dir.path())
        // cubecl keeps its compiled kernels in the user's cache: a warm one saves seconds.
        .env_remove("XDG_CACHE_HOME")
        .args(["run", "gpu.json", "--out", "res"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");

    let dir = dir.path().join("res/gpu");
    let hash_dir = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for i in 0..2 {
        let text = std::fs::read_to_string(hash_dir.join(format!("repeat-00{i}.json"))).unwrap();
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["backend"], "wgpu");
        // Both repeats trained as one stack: the GPU default.
        assert_eq!(record["stack_size"], 2);
        let loss = record["loss_curve"]["values"][0].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    }
}

/// An impossible size on wgpu is refused up front, against the device's memory where cubecl
/// reports it and this machine's otherwise (lavapipe reports none), not left to an allocation
/// failure half-way.
#[test]
#[cfg_attr(
    not(feature = "wgpu"),
    ignore = "needs the wgpu feature: cargo test --release --features wgpu"
)]
fn impossible_sizes_on_wgpu_are_refused_against_the_device_memory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("huge.json"),
        r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline", "hidden": 400000},
            "backend": "wgpu", "repeats": 1}"#,
    )
    .unwrap();
    let out = common::attnx(dir.path())
        // Mesa warns on stderr without it; the check is that attnx says one line.
        .env("XDG_RUNTIME_DIR", dir.path())
        .args(["run", "huge.json", "--out", "res"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("no usable adapter"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("training needs about ") && stderr.contains("available on "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
