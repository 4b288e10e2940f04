//! The report's page in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) opens `report/index.html` and every config's page of repeats from the
//! file system, at a desktop and at a phone width, and the test fails on a console error, a
//! broken link or image, a claim of `experiments/` missing from the overview, or a table wider
//! than the page. It leaves screenshots in `$ATTNX_SCREENSHOTS` (default: cargo's
//! `target/tmp/report-screenshots`).
//!
//! `#[ignore]`d in the README's test command (a fresh machine has no Chromium); CI runs it with
//! `--ignored`, and there it fails, never skips, when Chromium is missing.

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use chromium::Browser;
use common::attnx;

/// A window the page is checked at.
struct Width {
    name: &'static str,
    width: u32,
    height: u32,
    mobile: bool,
}

const WIDTHS: [Width; 2] = [
    Width {
        name: "desktop",
        width: 1280,
        height: 900,
        mobile: false,
    },
    Width {
        name: "phone",
        width: 390,
        height: 844,
        mobile: true,
    },
];

/// What the page says about itself once every image has loaded or failed: its problems
/// (sideways scrolling, wide tables, broken images), its links, ids and overview rows.
const INSPECT: &str = r#"(async () => {
  await Promise.all([...document.images].map(i => i.complete ? null :
    new Promise(done => { i.addEventListener('load', done); i.addEventListener('error', done); })));
  const page = document.documentElement.clientWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > page + 1)
    problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${page}px window`);
  document.querySelectorAll('table').forEach((t, i) => {
    const r = t.getBoundingClientRect();
    if (r.right > page + 1)
      problems.push(`table ${i} (${t.className}) reaches ${Math.round(r.right)}px in a ${page}px window`);
  });
  for (const img of document.images)
    if (img.naturalWidth === 0) problems.push(`image ${img.getAttribute('src')} did not load`);
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const overview = [...document.querySelectorAll('table.overview tbody tr')].map(tr =>
    [...tr.children].map(td => td.textContent));
  return JSON.stringify({ problems, links, ids, overview, height: document.documentElement.scrollHeight });
})()"#;

/// One page as a width shows it.
struct Seen {
    problems: Vec<String>,
    links: Vec<String>,
    ids: BTreeSet<String>,
    overview: Vec<Vec<String>>,
    height: u64,
}

fn url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// Opens `page` in `browser` (already at `width`); console errors count as problems.
fn look(browser: &mut Browser, page: &Path) -> Seen {
    browser.open(&url(page));
    let text = browser.evaluate(INSPECT);
    let found: Value = serde_json::from_str(text.as_str().expect("the inspection's JSON")).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut problems = strings(&found["problems"]);
    problems.extend(browser.errors());
    Seen {
        problems,
        links: strings(&found["links"]),
        ids: strings(&found["ids"]).into_iter().collect(),
        overview: found["overview"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect(),
        height: found["height"].as_u64().unwrap(),
    }
}

/// The problems of `seen`'s links: each must be a file under `root` that exists, and a
/// fragment must name an element of its page.
fn broken_links(page: &Path, seen: &Seen, root: &Path) -> Vec<String> {
    let root = root.canonicalize().unwrap();
    let this = page.canonicalize().unwrap();
    let mut broken = Vec::new();
    for link in &seen.links {
        let Some(rest) = link.strip_prefix("file://") else {
            broken.push(format!(
                "{link}: not a file of the report (the page must work offline)"
            ));
            continue;
        };
        let (path, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let path = PathBuf::from(path);
        let Ok(target) = path.canonicalize() else {
            broken.push(format!("{link}: no such file"));
            continue;
        };
        if !target.starts_with(&root) {
            broken.push(format!("{link}: outside the results folder"));
        }
        if fragment.is_empty() {
            continue;
        }
        let found = if target == this {
            seen.ids.contains(fragment)
        } else {
            fs::read_to_string(&target)
                .unwrap_or_default()
                .contains(&format!("id=\"{fragment}\""))
        };
        if !found {
            broken.push(format!("{link}: no element #{fragment}"));
        }
    }
    broken
}

/// Checks the page set under `results/report` at both widths, the config pages it links
/// included; with `shots`, saves the index's first screen and whole page at each width as PNG
/// files named after `shot`. Returns the overview's rows at the desktop width.
fn check_pages(results: &Path, shots: Option<(&Path, &str)>) -> Vec<Vec<String>> {
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::start(profile.path());
    let index = results.join("report/index.html");
    let mut problems = Vec::new();
    let mut overview = Vec::new();
    for width in &WIDTHS {
        browser.window(width.width, width.height, width.mobile);
        let seen = look(&mut browser, &index);
        problems.extend(
            seen.problems
                .iter()
                .map(|p| format!("index.html, {}: {p}", width.name)),
        );
        problems.extend(broken_links(&index, &seen, results));
        // Every config page the index links, at this width too.
        let pages: BTreeSet<PathBuf> = seen
            .links
            .iter()
            .filter_map(|l| l.strip_prefix("file://"))
            .map(|l| PathBuf::from(l.split('#').next().unwrap()))
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("configs")) && p.is_file())
            .collect();
        assert!(!pages.is_empty(), "the index links no config page");
        for page in &pages {
            let config = look(&mut browser, page);
            let name = page.file_name().unwrap().to_string_lossy().to_string();
            problems.extend(
                config
                    .problems
                    .iter()
                    .map(|p| format!("{name}, {}: {p}", width.name)),
            );
            problems.extend(broken_links(page, &config, results));
        }
        if let Some((dir, shot)) = shots {
            // The first screen, and the whole page (Chromium's limit: 16384 pixels).
            for (suffix, height) in [
                ("", width.height),
                ("-full", seen.height.min(16_384) as u32),
            ] {
                let png = dir.join(format!("{shot}-{}{suffix}.png", width.name));
                chromium::screenshot(&url(&index), width.width, height, &png);
                eprintln!("screenshot: {}", png.display());
            }
        }
        if width.name == "desktop" {
            overview = seen.overview;
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    overview
}

/// The experiments' claims, and the experiments by name, from `experiments/`.
fn experiments() -> BTreeMap<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("json")))
        .map(|p| {
            let e: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
            (e["name"].as_str().unwrap().to_string(), e)
        })
        .collect()
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("ATTNX_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots"),
        PathBuf::from,
    );
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies the committed results (records and the heatmaps `attnx attention` drew) into a
/// temporary folder: the page is made there, not in the checkout.
fn committed_results(to: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    for file in common::walk(&from) {
        let relative = file.strip_prefix(&from).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        if first == "report" {
            continue;
        }
        let target = to.join(relative);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&file, &target).unwrap();
    }
    to.to_path_buf()
}

fn report(results: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    attnx(root)
        .args(["report"])
        .arg(results)
        .args(["--format", "html,markdown"])
        .assert()
        .success();
}

#[test]
#[ignore = "needs headless Chromium (apt-get install chromium); CI runs it"]
fn the_report_page_passes_in_a_real_browser_at_desktop_and_phone_widths() {
    let dir = tempfile::tempdir().unwrap();
    let results = committed_results(&dir.path().join("results"));
    report(&results);
    let shots = screenshots();
    let overview = check_pages(&results, Some((&shots, "report")));

    // Every claim of every experiment is in the overview, and every experiment has a row.
    let claims: BTreeSet<&str> = overview.iter().map(|r| r[1].as_str()).collect();
    let names: BTreeSet<&str> = overview.iter().map(|r| r[0].as_str()).collect();
    for (name, experiment) in &experiments() {
        assert!(
            names.contains(name.as_str()),
            "experiment {name} has no row in the overview"
        );
        for claim in experiment["claims"].as_array().into_iter().flatten() {
            let claim = claim["claim"].as_str().unwrap();
            assert!(
                claims.contains(claim),
                "{name}'s claim is not in the overview: {claim}"
            );
        }
    }
    // The committed records decide every claim: none of them reads "not run yet".
    let not_run: Vec<&Vec<String>> = overview.iter().filter(|r| r[5] == "not run yet").collect();
    assert!(not_run.is_empty(), "rows not run: {not_run:?}");
}

#[test]
#[ignore = "needs headless Chromium (apt-get install chromium); CI runs it"]
fn a_partial_results_folder_still_gives_a_page_that_passes() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Only E1's baseline has records; one of attention's records is cut off mid-file; a
    // config folder holds no record at all.
    let results = dir.path().join("results");
    let hash = attnx::config::ExperimentConfig::load(&root.join("configs/baseline.json"))
        .unwrap()
        .hash();
    let baseline = root.join("results/baseline").join(&hash);
    let baseline_to = results.join("baseline").join(&hash);
    fs::create_dir_all(&baseline_to).unwrap();
    for repeat in ["repeat-000.json", "repeat-001.json", "repeat-002.json"] {
        fs::copy(baseline.join(repeat), baseline_to.join(repeat)).unwrap();
    }
    let attention = results.join("attention/0123456789ab");
    fs::create_dir_all(&attention).unwrap();
    let record = fs::read_to_string(baseline.join("repeat-003.json")).unwrap();
    fs::write(
        attention.join("repeat-000.json"),
        &record[..record.len() / 2],
    )
    .unwrap();
    fs::create_dir_all(results.join("imdb_pe/0123456789ab")).unwrap();

    report(&results);
    let index = fs::read_to_string(results.join("report/index.html")).unwrap();
    assert!(
        index.contains("attention/0123456789ab/repeat-000.json: unreadable record, skipped"),
        "the truncated record is not named"
    );
    let overview = check_pages(&results, Some((&screenshots(), "partial")));
    let mark = |experiment: &str| -> Vec<&str> {
        overview
            .iter()
            .filter(|r| r[0] == experiment)
            .map(|r| r[5].as_str())
            .collect()
    };
    // E2 was never run: each of its claims says so; E1's claims on the baseline alone are
    // decided from its three repeats, the one on attention's figure has no records.
    assert!(
        mark("e2").iter().all(|m| *m == "not run yet"),
        "{:?}",
        mark("e2")
    );
    assert!(!mark("e2").is_empty());
    assert!(
        mark("e1").iter().all(|m| *m != "not run yet"),
        "{:?}",
        mark("e1")
    );
}
