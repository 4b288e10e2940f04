//! Experiments: one file per article comparison in `experiments/`, naming the configs compared,
//! the metric, and the published figures to show beside attnx's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;
pub use crate::record::At;

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
    /// What the article claims, each with the test that decides it from the records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// The equivalence margin in points: two means within it are "the same" for the claims'
    /// equivalence tests (default 1 point).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Run until decided: a group-sequential design over the configs (each against the first)
    /// instead of a fixed number of repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<Sequential>,
}

/// A group-sequential comparison (see [`crate::stats::sequential`]): repeats in looks of 3, 5, 8, ...
/// per config until every comparison is decided, at most `max_repeats`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequential {
    pub max_repeats: usize,
    /// Two means within this many points are equivalent (default 1).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// The family's error rate (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The figure compared (default: the final accuracy).
    #[serde(default)]
    pub at: At,
}

fn default_alpha() -> f64 {
    0.05
}

/// The command line's design when it names no experiment: at most 20 repeats, a margin of one
/// point, alpha 0.05, the final accuracy.
impl Default for Sequential {
    fn default() -> Self {
        Self {
            max_repeats: 20,
            margin: default_margin(),
            alpha: default_alpha(),
            at: At::default(),
        }
    }
}

impl Sequential {
    /// Checks the design's numbers; `what` names them in the error.
    pub fn validate(&self, what: &str) -> Result<(), InputError> {
        if self.max_repeats < 3 {
            return Err(InputError(format!(
                "{what}: max_repeats must be at least 3 (the first look), got {}",
                self.max_repeats
            )));
        }
        if !(self.margin.is_finite() && self.margin > 0.0) {
            return Err(InputError(format!(
                "{what}: margin must be a positive number of points, got {}",
                self.margin
            )));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(InputError(format!(
                "{what}: alpha must lie between 0 and 1, got {}",
                self.alpha
            )));
        }
        Ok(())
    }

    /// The looks of the design for `configs` configs, each compared with the first.
    pub fn plan(&self, configs: usize) -> crate::stats::sequential::Plan {
        self.design(configs.saturating_sub(1)).plan()
    }

    /// The design for a family of `comparisons`.
    pub fn design(&self, comparisons: usize) -> crate::stats::sequential::Design {
        crate::stats::sequential::Design {
            max_repeats: self.max_repeats,
            margin: self.margin,
            alpha: self.alpha,
            comparisons,
        }
    }
}

/// The equivalence margin, in points, where neither an experiment nor the command line gives
/// one.
pub const DEFAULT_MARGIN: f64 = 1.0;

fn default_margin() -> f64 {
    DEFAULT_MARGIN
}

/// A sentence an article states, and the test that decides it from attnx's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The article's claim, in one sentence.
    pub claim: String,
    pub test: ClaimTest,
}

/// How a claim is tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClaimTest {
    /// `variant` scores higher than, lower than, or the same as `control` (Welch's test and
    /// the equivalence test over the repeats).
    Difference {
        control: String,
        variant: String,
        direction: Direction,
        #[serde(default)]
        at: At,
    },
    /// The config scores what the article published for it (the published figure inside
    /// attnx's prediction interval).
    Level {
        config: String,
        #[serde(default)]
        at: At,
    },
    /// A config's test accuracy changes from epoch `from` to epoch `to` (paired over repeats).
    Change {
        config: String,
        from: usize,
        to: usize,
        direction: Direction,
    },
}

impl ClaimTest {
    /// The configs the test reads.
    pub fn configs(&self) -> Vec<&str> {
        match self {
            ClaimTest::Difference {
                control, variant, ..
            } => vec![control, variant],
            ClaimTest::Level { config, .. } | ClaimTest::Change { config, .. } => vec![config],
        }
    }
}

/// Which way a difference goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
    /// No difference: equivalent within the experiment's margin.
    Same,
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
    /// Training accuracy after each epoch (E2, E3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<Vec<f64>>,
}

impl Published {
    /// The published figure at `at`: the mean of the repeats (echo), or the test accuracy of
    /// the best, last or given epoch.
    pub fn at(&self, at: At) -> Option<f64> {
        if let Some(repeats) = &self.repeats {
            return (at == At::Final)
                .then(|| crate::stats::Summary::of(repeats).map(|s| s.mean))
                .flatten();
        }
        let test = self.test_accuracy.as_ref()?;
        match at {
            At::Final => test.last().copied(),
            At::Best => test.iter().copied().reduce(f64::max),
            At::Epoch(e) => test.get(e.checked_sub(1)?).copied(),
            At::MacroF1 => None,
        }
    }

    /// How many runs the published figure is the mean of.
    pub fn runs(&self) -> usize {
        self.repeats.as_ref().map_or(1, Vec::len)
    }

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
        let text = crate::builtin::read(path)
            .map_err(|e| InputError(format!("{}: cannot read experiment: {e}", path.display())))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let mut experiment: Self = serde_path_to_error::deserialize(de).map_err(|e| {
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
        // Checked before it is copied into the design, so that the error names the field given.
        if !(experiment.margin.is_finite() && experiment.margin > 0.0) {
            return Err(InputError(format!(
                "{}: margin: must be a positive number of points, got {}",
                path.display(),
                experiment.margin
            )));
        }
        // One margin per experiment: the design's and the claims' and tables'. Given in one
        // place it holds for both; given in both, the two must agree.
        if let Some(sequential) = &mut experiment.sequential {
            let raw: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let top = raw.get("margin").is_some();
            let inner = raw.pointer("/sequential/margin").is_some();
            match (top, inner) {
                (true, true) if sequential.margin != experiment.margin => {
                    return Err(InputError(format!(
                        "{}: sequential.margin ({}) differs from margin ({}): give the margin once",
                        path.display(),
                        sequential.margin,
                        experiment.margin
                    )));
                }
                (false, true) => experiment.margin = sequential.margin,
                (true, false) => sequential.margin = experiment.margin,
                _ => {}
            }
        }
        if let Some(sequential) = &experiment.sequential {
            sequential.validate(&format!("{}: sequential", path.display()))?;
            if experiment.sweep.is_some() || experiment.configs.len() < 2 {
                return Err(InputError(format!(
                    "{}: sequential: compares two or more configs (not a sweep)",
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
        for (i, claim) in experiment.claims.iter().enumerate() {
            let at = |what: &str| format!("{}: claims[{i}]: {what}", path.display());
            if let Some(config) = claim
                .test
                .configs()
                .into_iter()
                .find(|c| !experiment.configs.iter().any(|k| k == c))
            {
                return Err(InputError(at(&format!(
                    "{config} is not one of the experiment's configs"
                ))));
            }
            match &claim.test {
                ClaimTest::Level { config, at: when }
                    if experiment
                        .published
                        .get(config)
                        .and_then(|p| p.at(*when))
                        .is_none() =>
                {
                    return Err(InputError(at(&format!(
                        "the article publishes no figure for {config} at {when}"
                    ))));
                }
                ClaimTest::Change { from, to, .. } if from == to || *from == 0 || *to == 0 => {
                    return Err(InputError(at(
                        "from and to must be two different epochs, counted from 1",
                    )));
                }
                _ => {}
            }
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
            let path = crate::config::resolve_named(
                name,
                configs_dir,
                crate::config::CONFIG_DIR,
                "config",
                "",
            )?;
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

    /// Every experiment in `dir` and every built-in one no file there shadows, sorted by
    /// name, each saying whether it is built in; unreadable ones are errors.
    pub fn load_all(dir: &Path) -> Result<Vec<(Self, bool)>, InputError> {
        crate::builtin::merged(dir, EXPERIMENT_DIR)
            .iter()
            .map(|(_, p)| Ok((Self::load(p)?, crate::builtin::is_builtin(p))))
            .collect()
    }
}

/// Resolves `e1` to `experiments/e1.json`, or takes a path as it is.
pub fn resolve(name: &str) -> Result<PathBuf, InputError> {
    crate::config::resolve_named(
        name,
        Path::new(EXPERIMENT_DIR),
        EXPERIMENT_DIR,
        "experiment",
        "",
    )
}

/// Whether a JSON file is an experiment (it lists configs) rather than a config.
pub fn is_experiment_file(path: &Path) -> bool {
    crate::builtin::read(path)
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
        let experiments: Vec<Experiment> = Experiment::load_all(&root.join(EXPERIMENT_DIR))
            .unwrap()
            .into_iter()
            .map(|(e, builtin)| {
                assert!(
                    !builtin,
                    "{}: the checkout's file, not the built-in one",
                    e.name
                );
                e
            })
            .collect();
        let names: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "e1",
                "e1_keras2",
                "e2",
                "e2_sequential",
                "e2_validated",
                "e3",
                "e4",
                "e4_imdb",
                "e4_lstm_sequential",
                "echo_difficulty",
                "general_steps",
                "stars"
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
        assert_eq!(experiments[2].published["imdb_pe"].headline(), Some(84.47));
    }
}
