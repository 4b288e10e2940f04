//! Runs configs until their comparisons are decided ([`crate::stats::sequential`]): each look's
//! repeats are trained like any run (claimed, recorded, resumable), and every decision is
//! taken from the records, so a killed run, a second process or a Slurm array task continues
//! the same design and reaches the same verdict.

use anyhow::{Result, bail};

use crate::config::ExperimentConfig;
use crate::experiment::Sequential;
use crate::record::{At, ConfigRecords, leading_figures};
use crate::stats::sequential::{Look, Plan};
use crate::store::ResultStore;

use super::RunOptions;

/// One comparison of the family: a config against the first, and the looks it took.
#[derive(Debug, Clone)]
pub struct Compared {
    pub control: String,
    pub variant: String,
    pub looks: Vec<Look>,
}

/// Where a sequential comparison stands.
#[derive(Debug)]
pub struct Standing {
    pub plan: Plan,
    pub comparisons: Vec<Compared>,
    /// Each config's records (every recorded repeat up to the maximum).
    pub results: Vec<ConfigRecords>,
}

impl Standing {
    /// How many repeats the next look still misses, over all configs.
    pub fn missing_for_next_look(&self) -> usize {
        self.needed()
            .iter()
            .zip(&self.results)
            .map(|(&n, r)| {
                (0..n)
                    .filter(|i| !r.records.iter().any(|rec| rec.repeat == *i))
                    .count()
            })
            .sum()
    }

    /// The repeats each config needs for its comparisons' next look (0 when all of them are
    /// decided or at their last look).
    fn needed(&self) -> Vec<usize> {
        let mut needed = vec![0; self.results.len()];
        for (i, compared) in self.comparisons.iter().enumerate() {
            if let Some(n) = self.plan.next_repeats(&compared.looks) {
                needed[0] = needed[0].max(n);
                needed[i + 1] = needed[i + 1].max(n);
            }
        }
        needed
    }
}

/// Each config's figures at `at` ([`leading_figures`]); a recorded repeat in that run without
/// the figure is an error (the design cannot go past it).
fn figures(results: &ConfigRecords, at: At) -> Result<Vec<f64>> {
    let figures = leading_figures(&results.records, at);
    if let Some(record) = results.records.get(figures.len())
        && record.repeat == figures.len()
    {
        bail!(
            "{}: repeat {} has no {at} figure to compare (echo records have no epochs; a validation split tests once)",
            results.config.name(),
            record.repeat
        );
    }
    Ok(figures)
}

/// Where the comparisons of `configs` (each against the first) stand on what `store` holds,
/// training nothing.
pub fn standing(
    store: &ResultStore,
    configs: &[ExperimentConfig],
    sequential: &Sequential,
) -> Result<Standing> {
    let plan = sequential.plan(configs.len());
    let configs: Vec<ExperimentConfig> = configs
        .iter()
        .map(|c| ExperimentConfig {
            repeats: Some(sequential.max_repeats),
            ..c.clone()
        })
        .collect();
    let (results, _) = super::recorded_and_missing(store, configs)?;
    let figures = results
        .iter()
        .map(|r| figures(r, sequential.at))
        .collect::<Result<Vec<_>>>()?;
    let comparisons = (1..results.len())
        .map(|i| Compared {
            control: results[0].config.name().to_string(),
            variant: results[i].config.name().to_string(),
            looks: plan.looks(&figures[0], &figures[i]),
        })
        .collect();
    Ok(Standing {
        plan,
        comparisons,
        results,
    })
}

/// Why a config's records will not have the figure at `at`, said before anything trains.
fn lacks_figure(config: &ExperimentConfig, at: At) -> Option<&'static str> {
    use crate::config::{Corpus, Study};
    match (&config.study, at) {
        (_, At::Final) => None,
        (Study::Echo { .. }, _) => Some("an echo repeat has no epochs nor classes"),
        (Study::Imdb { task, .. }, At::Best | At::Epoch(_)) if task.validation_split.is_some() => {
            Some("with a validation split the test set is evaluated once")
        }
        (Study::Imdb { task, .. }, At::Epoch(e)) if e > task.epochs => {
            Some("it trains fewer epochs")
        }
        (
            Study::Imdb {
                corpus: Corpus::Imdb,
                ..
            },
            At::MacroF1,
        ) => Some("macro-F1 is a text task's"),
        _ => None,
    }
}

/// Trains each look's missing repeats until every comparison is decided or at its last look;
/// `say` reports each look. Returns where they stand.
pub fn until_decided(
    store: &ResultStore,
    configs: Vec<ExperimentConfig>,
    sequential: &Sequential,
    options: &RunOptions,
    say: &dyn Fn(&str),
) -> Result<Standing> {
    if configs.len() < 2 {
        bail!(crate::error::InputError(
            "--until-decided compares two or more configs".into()
        ));
    }
    for config in &configs {
        if let Some(why) = lacks_figure(config, sequential.at) {
            bail!(crate::error::InputError(format!(
                "{}: its records have no {} figure ({why}); compare another (--at)",
                config.name(),
                sequential.at
            )));
        }
    }
    let mut previous: Option<Vec<usize>> = None;
    loop {
        let standing = standing(store, &configs, sequential)?;
        for compared in &standing.comparisons {
            if let Some(look) = compared.looks.last() {
                say(&format!(
                    "{} - {}: look {} ({} repeats each): {}",
                    compared.variant,
                    compared.control,
                    compared.looks.len(),
                    look.repeats,
                    crate::report::sequential::describe(look, sequential.margin)
                ));
            }
        }
        let needed = standing.needed();
        if needed.iter().all(|&n| n == 0) {
            return Ok(standing);
        }
        if previous.as_ref() == Some(&needed) {
            // The runner came back without this look's repeats: other processes hold them
            // and this one does not wait (--no-wait).
            say("the next look's repeats are held by other processes: run again to continue");
            return Ok(standing);
        }
        let todo: Vec<ExperimentConfig> = configs
            .iter()
            .zip(&needed)
            .filter(|(_, n)| **n > 0)
            .map(|(c, &n)| ExperimentConfig {
                repeats: Some(n),
                ..c.clone()
            })
            .collect();
        say(&format!(
            "next look: {} repeats of {}",
            needed.iter().max().unwrap_or(&0),
            todo.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        ));
        super::run(store, todo, options)?;
        previous = Some(needed);
    }
}
