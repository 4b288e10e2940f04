//! `attnx slurm`: runs configs (or an experiment) as a Slurm array job. The script it writes
//! runs `attnx run`/`compare` in every array task on the shared results folder; the store's
//! claims make the tasks a dynamic queue (each takes the next unclaimed repeat), so an IMDB
//! repeat of minutes and an echo repeat of seconds balance themselves, and a task killed
//! mid-repeat loses only that repeat: submitting again finishes exactly what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::config::{Axis, Backend, ExperimentConfig, Override};
use crate::error::InputError;
use crate::experiment::Experiment;
use crate::report;
use crate::runner;
use crate::store::ResultStore;

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Configs (files or names in configs/) or experiments (files or names in experiments/).
    #[arg(required = true, num_args = 1..)]
    pub configs: Vec<String>,
    /// Number of repeats (overrides each config's `repeats`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub repeats: Option<u64>,
    /// Backend to run on (overrides the configs'); `wgpu` with `--gpus 1` for a GPU partition.
    #[arg(long, value_enum, value_name = "B")]
    pub backend: Option<Backend>,
    /// Base seed (overrides the configs' `seed`).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Change a config field (`--set PATH=VALUE`), or sweep it (`--set PATH=V1,V2,...`, one
    /// config only): as for `attnx run` and `attnx sweep`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// The IMDB data, as the compute nodes see it (an aclImdb archive or folder).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// The results folder, on a file system every node shares.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Array tasks [default: one per missing repeat, at most 64].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub tasks: Option<u64>,
    /// At most this many array tasks at once (`--array=0-N%P`).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u64).range(1..))]
    pub array_parallelism: Option<u64>,
    /// CPUs per task; each task trains that many repeats at a time.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub cpus_per_task: u64,
    /// GPUs per task (`--gpus`); use with `--backend wgpu`.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u64>,
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// Time limit per task (`--time`, e.g. 2:00:00).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Job name [default: attnx].
    #[arg(long, value_name = "NAME", default_value = "attnx")]
    pub job_name: String,
    /// Let Slurm requeue a preempted or failed task (`--requeue`).
    #[arg(long)]
    pub requeue: bool,
    /// An extra `#SBATCH` option, e.g. `--sbatch=--account=lab --sbatch=--qos=long`.
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// A shell line the script runs before attnx, e.g. `--setup 'module load vulkan'`.
    #[arg(long, value_name = "LINE")]
    pub setup: Vec<String>,
    /// Print the script and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Block until every task has ended, then print the comparison table.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub sequential: super::run::SequentialArgs,
}

pub fn run(args: &SlurmArgs) -> Result<()> {
    // The array tasks run this same binary: a GPU job needs one built with wgpu.
    let compiled = crate::backend::compiled();
    if !compiled.contains(&Backend::Wgpu) && args.gpus.is_some_and(|g| g > 0) {
        return Err(InputError(format!(
            "--gpus: the array tasks run this attnx, and {}",
            crate::backend::without_wgpu().0
        ))
        .into());
    }
    let job = Job::of(args)?;
    let options = runner::RunOptions {
        repeats: args.repeats.map(|n| n as usize),
        backend: args.backend,
        seed: args.seed,
        ..runner::RunOptions::default()
    };
    let configs = job
        .configs()?
        .into_iter()
        .map(|c| runner::apply_overrides(c, &options))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(config) = configs.iter().find(|c| !compiled.contains(&c.backend)) {
        return Err(InputError(format!(
            "{}: runs on {}, and {}",
            config.name(),
            config.backend,
            crate::backend::without_wgpu().0
        ))
        .into());
    }
    let store = ResultStore::new(&args.out);
    // The margin the user gave (--margin, or the experiment's) is the one every table uses.
    let file_margin = job.experiment_margin();
    let default_margin = file_margin.unwrap_or(crate::report::DEFAULT_MARGIN);
    let sequential = args.sequential.spec(job.sequential(), default_margin)?;
    let margin = sequential.map_or(default_margin, |s| s.margin);
    if let Some(file_margin) = file_margin {
        super::run::note_margin(margin, file_margin);
    }
    let todo = match &sequential {
        // The next look's missing repeats: the tasks go on to later looks by themselves.
        Some(spec) => {
            let standing = runner::sequential::standing(&store, &configs, spec)?;
            standing.missing_for_next_look()
        }
        None => {
            let (_, missing) = runner::recorded_and_missing(&store, configs.clone())?;
            missing.iter().map(Vec::len).sum()
        }
    };
    if todo == 0 {
        eprintln!(
            "nothing to run: every repeat is recorded in {}",
            args.out.display()
        );
        return print_table(&store, configs, margin);
    }
    let tasks = args.tasks.map_or(todo.min(64), |n| n as usize).min(todo);
    let out = absolute(&args.out)?;
    let logs = out.join("slurm");
    let script = script(args, &job, sequential.as_ref(), &out, tasks)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let script_path = logs.join(format!("{}-{stamp}.sbatch", args.job_name));
    if args.dry_run {
        print!("{script}");
        eprintln!("{todo} repeat(s) missing; {tasks} array task(s); nothing submitted (--dry-run)");
        return Ok(());
    }
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    crate::fsutil::write_atomic(&script_path, script.as_bytes())?;
    let mut sbatch = Command::new("sbatch");
    sbatch.arg("--parsable");
    if args.wait {
        sbatch.arg("--wait");
    }
    let submitted = sbatch.arg(&script_path).output().map_err(|e| {
        InputError(format!(
            "cannot run sbatch ({e}): is this a Slurm login node?"
        ))
    })?;
    let stdout = String::from_utf8_lossy(&submitted.stdout);
    let job = stdout.lines().next().unwrap_or("").trim().to_string();
    if job.is_empty() {
        bail!(
            "sbatch refused {}: {}",
            script_path.display(),
            String::from_utf8_lossy(&submitted.stderr).trim()
        );
    }
    eprintln!(
        "submitted job {job}: {tasks} array task(s) for {todo} missing repeat(s); script {}, logs {}/{job}_*.out",
        script_path.display(),
        logs.display()
    );
    if !args.wait {
        println!("{job}");
        return Ok(());
    }
    if !submitted.status.success() {
        eprintln!("warning: some array tasks failed (see their logs); submit again to finish");
    }
    if let Some(spec) = &sequential {
        let standing = runner::sequential::standing(&store, &configs, spec)?;
        super::run::print_standing(spec, &standing);
    }
    print_table(&store, configs, margin)
}

/// What every array task runs.
enum Job {
    /// Configs, each with the same fixed changes: `attnx run` or `attnx compare` (until
    /// decided, when the experiment named asks for it).
    Configs {
        paths: Vec<PathBuf>,
        set: Vec<Override>,
        sequential: Option<crate::experiment::Sequential>,
        /// The equivalence margin of the experiment named alone, if one was.
        margin: Option<f64>,
    },
    /// A grid of one config: `attnx sweep`.
    Sweep { path: PathBuf, axes: Vec<Axis> },
    /// A sweep experiment: `attnx compare --experiment`, and its equivalence margin.
    Experiment { path: PathBuf, margin: f64 },
}

impl Job {
    /// The job the command line asks for; paths are made absolute, so that the script does
    /// not depend on the folder it runs in.
    fn of(args: &SlurmArgs) -> Result<Self> {
        let axes: Vec<Axis> = crate::config::overrides::parse_all(&args.set)?;
        let mut paths = Vec::new();
        let mut sequential = None;
        let mut margin = None;
        for name in &args.configs {
            let path = crate::config::resolve_config_path(name)
                .or_else(|_| crate::experiment::resolve(name))?;
            if !crate::experiment::is_experiment_file(&path) {
                paths.push(absolute(&path)?);
                continue;
            }
            let experiment = Experiment::load(&path)?;
            if experiment.sweep.is_some() {
                if args.configs.len() > 1 || !axes.is_empty() {
                    return Err(InputError(format!(
                        "{name}: a sweep experiment is submitted alone, without --set"
                    ))
                    .into());
                }
                return Ok(Job::Experiment {
                    path: absolute(&path)?,
                    margin: experiment.margin,
                });
            }
            if args.configs.len() == 1 {
                sequential = experiment.sequential;
                margin = Some(experiment.margin);
            }
            for config in &experiment.configs {
                paths.push(absolute(&crate::config::resolve_config_path(config)?)?);
            }
        }
        if axes.iter().any(|a| a.values.len() > 1) {
            let [path] = &paths[..] else {
                return Err(InputError(
                    "--set with several values sweeps one config: name exactly one".into(),
                )
                .into());
            };
            return Ok(Job::Sweep {
                path: path.clone(),
                axes,
            });
        }
        let set = axes.iter().map(|a| a.at(0)).collect();
        Ok(Job::Configs {
            paths,
            set,
            sequential,
            margin,
        })
    }

    /// The margin of the experiment the job runs, if it runs one.
    fn experiment_margin(&self) -> Option<f64> {
        match self {
            Job::Configs { margin, .. } => *margin,
            Job::Experiment { margin, .. } => Some(*margin),
            Job::Sweep { .. } => None,
        }
    }

    /// The sequential design an experiment named alone asks for.
    fn sequential(&self) -> Option<crate::experiment::Sequential> {
        match self {
            Job::Configs { sequential, .. } => *sequential,
            _ => None,
        }
    }

    /// The configs the tasks will run, before the command line's other options.
    fn configs(&self) -> Result<Vec<ExperimentConfig>> {
        Ok(match self {
            Job::Configs { paths, set, .. } => paths
                .iter()
                .map(|p| ExperimentConfig::load_with(p, set))
                .collect::<Result<_, _>>()?,
            Job::Sweep { path, axes } => crate::config::overrides::grid_configs(path, axes)?
                .into_iter()
                .map(|(config, _, _)| config)
                .collect(),
            // As the tasks will read it: the script runs where it was submitted.
            Job::Experiment { path, .. } => Experiment::load(path)?
                .points(Path::new(crate::config::CONFIG_DIR))?
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.config)
                .collect(),
        })
    }

    /// The attnx subcommand and its job arguments, as shell words.
    fn words(&self) -> Vec<String> {
        let path = |p: &PathBuf| shell_word(&p.to_string_lossy());
        let set = |label: String| format!("--set {}", shell_word(&label));
        match self {
            Job::Configs {
                paths, set: sets, ..
            } => {
                let mut words = vec![if paths.len() == 1 { "run" } else { "compare" }.to_string()];
                words.extend(paths.iter().map(path));
                words.extend(sets.iter().map(|o| set(o.label())));
                words
            }
            Job::Sweep { path: p, axes } => {
                let mut words = vec!["sweep".to_string(), path(p)];
                words.extend(axes.iter().map(|a| set(a.label())));
                words
            }
            Job::Experiment { path: p, .. } => {
                vec!["compare".into(), "--experiment".into(), path(p)]
            }
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if crate::builtin::is_builtin(path) {
        return Ok(path.to_path_buf());
    }
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// The sbatch script: one `attnx` per array task, on every config, leaving what other tasks
/// hold to them (`--no-wait`).
fn script(
    args: &SlurmArgs,
    job: &Job,
    sequential: Option<&crate::experiment::Sequential>,
    out: &Path,
    tasks: usize,
) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the attnx binary")?;
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# Written by attnx {} (`attnx slurm`). Each array task trains the next unclaimed",
            env!("CARGO_PKG_VERSION")
        ),
        "# repeat of these configs until none is left; records go to the results folder below."
            .to_string(),
        format!("#SBATCH --job-name={}", args.job_name),
        match args.array_parallelism {
            Some(p) => format!("#SBATCH --array=0-{}%{p}", tasks - 1),
            None => format!("#SBATCH --array=0-{}", tasks - 1),
        },
        format!("#SBATCH --cpus-per-task={}", args.cpus_per_task),
        format!("#SBATCH --output={}/slurm/%A_%a.out", out.display()),
    ];
    let optional = [
        args.partition.as_ref().map(|p| format!("--partition={p}")),
        args.time.as_ref().map(|t| format!("--time={t}")),
        args.gpus.map(|g| format!("--gpus={g}")),
        args.requeue.then(|| "--requeue".to_string()),
    ];
    lines.extend(
        optional
            .into_iter()
            .flatten()
            .map(|o| format!("#SBATCH {o}")),
    );
    lines.extend(args.sbatch.iter().map(|o| format!("#SBATCH {o}")));
    lines.push("set -euo pipefail".into());
    lines.extend(args.setup.iter().cloned());
    // Where it was submitted from: experiments name their configs relative to it.
    let here = std::env::current_dir().context("cannot read the current folder")?;
    lines.push(format!("cd {}", shell_word(&here.to_string_lossy())));
    let mut command = vec![shell_word(&exe.to_string_lossy())];
    command.extend(job.words());
    command.extend(["--out".into(), shell_word(&out.to_string_lossy())]);
    if let Some(n) = args.repeats {
        command.push(format!("--repeats {n}"));
    }
    if let Some(b) = args.backend {
        command.push(format!("--backend {b}"));
    }
    if let Some(s) = args.seed {
        command.push(format!("--seed {s}"));
    }
    if let Some(d) = &args.data {
        command.push(format!(
            "--data {}",
            shell_word(&absolute(d)?.to_string_lossy())
        ));
    }
    command.push("--jobs \"${SLURM_CPUS_PER_TASK:-1}\"".into());
    match sequential {
        // Every task waits for the others' repeats of a look, then all go on to the next.
        Some(spec) => command.push(format!(
            "--until-decided --max-repeats {} --margin {} --alpha {} --at {}",
            spec.max_repeats,
            spec.margin,
            spec.alpha,
            spec.at.argument()
        )),
        None => command.push("--no-wait".into()),
    }
    lines.push(format!("exec {}", command.join(" ")));
    Ok(lines.join("\n") + "\n")
}

/// `word` quoted for bash when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The comparison table of what is recorded now, and what is still missing.
fn print_table(store: &ResultStore, configs: Vec<ExperimentConfig>, margin: f64) -> Result<()> {
    let (results, missing) = runner::recorded_and_missing(store, configs)?;
    for (result, missing) in results.iter().zip(&missing) {
        if !missing.is_empty() {
            eprintln!(
                "warning: {}: {} repeat(s) still missing ({:?}): submit again to run them",
                result.config.name(),
                missing.len(),
                missing
            );
        }
    }
    print!("{}", report::accuracy_report(&results, margin));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/a/b-c.json"), "/a/b-c.json");
        assert_eq!(shell_word("my results"), "'my results'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
