//! `attnx sweep CONFIG --set PATH=V1,V2 [--set ...]`: a grid of one config's variants, run
//! like `compare` (what is recorded is skipped) and compared in one table, every point
//! against the first, Holm-adjusted.

use anyhow::Result;
use clap::Args;

use super::run::{RunArgs, run_labelled};
use crate::config::{Axis, overrides};
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

pub fn run(command: &SweepCommand) -> Result<()> {
    let axes: Vec<Axis> = overrides::parse_all(&command.options.set)?;
    if axes.is_empty() {
        return Err(
            InputError("a sweep needs at least one --set PATH=V1,V2,... (an axis)".into()).into(),
        );
    }
    let path = crate::config::resolve_config_path(&command.config)?;
    let (configs, labels): (Vec<_>, Vec<_>) = overrides::grid_configs(&path, &axes)?
        .into_iter()
        .map(|(config, label, _)| (config, label))
        .unzip();
    eprintln!(
        "sweep of {}: {} point(s) ({})",
        command.config,
        configs.len(),
        axes.iter()
            .map(|a| format!("{} x{}", a.key(), a.values.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    run_labelled(
        configs,
        &labels,
        &command.options,
        crate::report::DEFAULT_MARGIN,
    )
}
