//! `attnx sweep CONFIG --set PATH=V1,V2 [--set ...]`: a grid of one config's variants, run
//! like `compare` (what is recorded is skipped) and compared in one table, every point
//! against the first, Holm-adjusted.

use anyhow::Result;
use clap::Args;

use super::run::{RunArgs, run_labelled};
use crate::config::{Axis, ExperimentConfig, overrides};
use crate::error::InputError;

#[derive(Debug, Args)]
pub struct SweepCommand {
    /// The base config (a file, or a name in configs/).
    pub config: String,
    /// `--set PATH=V1,V2,...` gives an axis (`START:STOP:STEP`, or `START:STOP:*FACTOR` for a
    /// geometric one, for numbers); `--set PATH=VALUE` a fixed change. The grid is every
    /// combination of the axes.
    #[command(flatten)]
    pub options: RunArgs,
}

/// The configs of a sweep and their labels: `base` with every combination of `axes`.
pub fn points(
    base: &std::path::Path,
    axes: &[Axis],
) -> Result<(Vec<ExperimentConfig>, Vec<String>), InputError> {
    let grid = overrides::grid(axes);
    let mut configs = Vec::with_capacity(grid.len());
    let mut labels = Vec::with_capacity(grid.len());
    for point in grid {
        let config = ExperimentConfig::load_with(base, &point)?;
        // The label names the axes that vary; a single-valued one is the same everywhere.
        let varying: Vec<String> = point
            .iter()
            .zip(axes)
            .filter(|(_, axis)| axis.values.len() > 1)
            .map(|(o, _)| o.label())
            .collect();
        labels.push(format!("{} [{}]", config.name(), varying.join(", ")));
        configs.push(config);
    }
    Ok((configs, labels))
}

pub fn run(command: &SweepCommand) -> Result<()> {
    let axes: Vec<Axis> = command
        .options
        .set
        .iter()
        .map(|s| s.parse().map_err(|e| InputError(format!("--set {e}"))))
        .collect::<Result<_, _>>()?;
    if axes.is_empty() {
        return Err(
            InputError("a sweep needs at least one --set PATH=V1,V2,... (an axis)".into()).into(),
        );
    }
    let path = crate::config::resolve_config_path(&command.config)?;
    let (configs, labels) = points(&path, &axes)?;
    eprintln!(
        "sweep of {}: {} point(s) ({})",
        command.config,
        configs.len(),
        axes.iter()
            .map(|a| format!("{} x{}", a.key(), a.values.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    run_labelled(configs, &labels, &command.options)
}
