//! Records the git commit attnx is built from, for the result records (`-dirty` when the
//! sources differ from that commit: a record must not name a commit whose code it did not run),
//! and builds the shipped configs and experiments into the binary (`src/builtin.rs`).
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
}

/// `&[("name", include_str!("/abs/dir/name.json")), ...]` for every `.json` file in `dir`,
/// sorted by name.
fn embedded(dir: &str) -> String {
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join(dir);
    // A build without them would be an attnx without its configs: fail instead.
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    let entries: Vec<String> = names
        .iter()
        .map(|name| {
            let path = root.join(format!("{name}.json"));
            format!("({name:?}, include_str!({:?}))", path.display().to_string())
        })
        .collect();
    format!("&[{}]", entries.join(", "))
}

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets it");
    for dir in ["configs", "experiments"] {
        std::fs::write(Path::new(&out).join(format!("{dir}.rs")), embedded(dir))
            .expect("OUT_DIR is writable");
    }
    for path in [
        ".git/HEAD",
        ".git/refs/heads",
        ".git/index",
        "src",
        "Cargo.toml",
        "configs",
        "experiments",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    let dirty = !commit.is_empty()
        && git(&[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
            "build.rs",
        ])
        .is_some_and(|changes| !changes.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=ATTNX_GIT_COMMIT={commit}{suffix}");
}
