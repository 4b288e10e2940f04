//! Experiments: one file per article comparison in `experiments/`, naming the configs compared,
//! the metric, and the published figures to show beside attnx's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// Where experiments named without a path are looked up.
pub const EXPERIMENT_DIR: &str = "experiments";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    pub title: String,
    /// What the numbers are, in words.
    pub metric: String,
    /// Config names (in `configs/`) compared, the reference first.
    pub configs: Vec<String>,
    /// Published figures per config name.
    #[serde(default)]
    pub published: BTreeMap<String, Published>,
    /// A sweep: each config at every point of a grid of settings, instead of as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
}

/// The grid of a sweep experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// One axis each, as on the command line: `"task.n_in=5,10,20"`, `"x=START:STOP:STEP"`.
    pub axes: Vec<String>,
    /// Repeats per point (overrides the configs').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
}

/// One point of a sweep experiment: a config with the grid's settings, and its label.
#[derive(Debug, Clone)]
pub struct Point {
    pub config: crate::config::ExperimentConfig,
    /// The config's name and the settings of the axes that vary: `attention [task.n_in=10]`.
    pub label: String,
    /// The point's value on each axis.
    pub values: Vec<serde_json::Value>,
}

impl Sweep {
    pub fn parsed_axes(&self) -> Result<Vec<crate::config::Axis>, String> {
        self.axes.iter().map(|a| a.parse()).collect()
    }
}

/// An article's figures for one config, in percent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Where the figures come from.
    pub source: String,
    /// Per-repeat final accuracies (E1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Vec<f64>>,
    /// Test accuracy after each epoch (E2, E3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<Vec<f64>>,
    /// Training accuracy after each epoch (E3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<Vec<f64>>,
}

impl Published {
    /// The published number comparable to attnx's per-config mean: the mean over repeats, or
    /// the best epoch's test accuracy.
    pub fn headline(&self) -> Option<f64> {
        if let Some(repeats) = &self.repeats {
            return crate::stats::Summary::of(repeats).map(|s| s.mean);
        }
        self.test_accuracy
            .as_ref()
            .and_then(|t| t.iter().copied().reduce(f64::max))
    }
}

impl Experiment {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("{}: cannot read experiment: {e}", path.display())))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let experiment: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            InputError(format!(
                "{}: {}: {}",
                path.display(),
                e.path(),
                e.inner().to_string().replace('`', "\"")
            ))
        })?;
        if let Some(sweep) = &experiment.sweep {
            let axes = sweep
                .parsed_axes()
                .map_err(|e| InputError(format!("{}: sweep.axes: {e}", path.display())))?;
            if axes.is_empty() {
                return Err(InputError(format!(
                    "{}: sweep.axes: name at least one axis",
                    path.display()
                )));
            }
        }
        if experiment.configs.is_empty() {
            return Err(InputError(format!(
                "{}: configs: name at least one config",
                path.display()
            )));
        }
        if let Some(extra) = experiment
            .published
            .keys()
            .find(|k| !experiment.configs.contains(k))
        {
            return Err(InputError(format!(
                "{}: published.{extra}: not one of the experiment's configs",
                path.display()
            )));
        }
        Ok(experiment)
    }

    /// A sweep experiment's points, every config at every grid point (config by config), with
    /// its configs read from `configs_dir`; `None` for a plain experiment.
    pub fn points(&self, configs_dir: &Path) -> Result<Option<Vec<Point>>, InputError> {
        let Some(sweep) = &self.sweep else {
            return Ok(None);
        };
        let axes = sweep
            .parsed_axes()
            .map_err(|e| InputError(format!("experiment {}: sweep.axes: {e}", self.name)))?;
        let mut points = Vec::new();
        for name in &self.configs {
            let path = configs_dir.join(format!("{name}.json"));
            for (mut config, label, values) in crate::config::overrides::grid_configs(&path, &axes)?
            {
                if let Some(n) = sweep.repeats {
                    config.repeats = Some(n);
                }
                points.push(Point {
                    config,
                    label,
                    values,
                });
            }
        }
        Ok(Some(points))
    }

    /// Every experiment in `dir`, sorted by file name; unreadable ones are errors.
    pub fn load_all(dir: &Path) -> Result<Vec<Self>, InputError> {
        crate::fsutil::files_named(dir, "", ".json")
            .unwrap_or_default()
            .iter()
            .map(|p| Self::load(p))
            .collect()
    }
}

/// Resolves `e1` to `experiments/e1.json`, or takes a path as it is.
pub fn resolve(name: &str) -> Result<PathBuf, InputError> {
    crate::config::resolve_named(name, Path::new(EXPERIMENT_DIR), "experiment", "")
}

/// Whether a JSON file is an experiment (it lists configs) rather than a config.
pub fn is_experiment_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("configs").is_some_and(serde_json::Value::is_array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_experiments_load_and_name_existing_configs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let experiments = Experiment::load_all(&root.join(EXPERIMENT_DIR)).unwrap();
        let names: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "e1",
                "e2",
                "e2_validated",
                "e3",
                "e4",
                "e4_imdb",
                "echo_difficulty",
                "general_steps"
            ]
        );
        for experiment in &experiments {
            for config in &experiment.configs {
                let path = root.join("configs").join(format!("{config}.json"));
                crate::config::ExperimentConfig::load(&path).unwrap();
            }
        }
        let e1 = &experiments[0];
        assert!((e1.published["attention"].headline().unwrap() - 95.7).abs() < 1e-9);
        assert!((e1.published["baseline"].headline().unwrap() - 23.1).abs() < 1e-9);
        assert_eq!(experiments[1].published["imdb_pe"].headline(), Some(84.47));
    }
}
