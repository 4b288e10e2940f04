//! The README's results: each experiment's claims with the article's figure, attnx's and the
//! verdict, its run-until-decided decisions, or its summary table, generated from the records
//! between two marker lines of the README (`attnx report results --readme README.md`), so that
//! no figure there is typed by hand.

use crate::error::InputError;
use crate::experiment::Experiment;

use super::document::{Block, Report};
use super::summary::{row, summary_table};
use super::{Scan, declared, sequential, verdict};

/// The line before the generated part.
pub const BEGIN: &str =
    "<!-- attnx report: begin (`attnx report results --readme README.md` writes this part) -->";
/// The line after it.
pub const END: &str = "<!-- attnx report: end -->";

/// The generated part: for every experiment that is not a sweep, a subheading and its claims
/// (article, attnx, verdict), its sequential decisions, or (with neither) its summary table.
pub fn markdown(scan: &Scan, experiments: &[Experiment]) -> String {
    let mut blocks = Vec::new();
    for experiment in experiments.iter().filter(|e| e.sweep.is_none()) {
        blocks.push(Block::Subheading(experiment.title.clone()));
        let groups = declared(scan, experiment);
        if groups.is_empty() {
            blocks.push(Block::Text(format!(
                "No records yet: `attnx compare --experiment {}` runs it.",
                experiment.name
            )));
            continue;
        }
        if !experiment.claims.is_empty() {
            blocks.push(claims_table(experiment, &groups));
        }
        if let Some(spec) = &experiment.sequential {
            let plan = spec.plan(experiment.configs.len());
            // The decisions and the compute; the looks' tables stay in REPORT.md.
            if let Some((compared, compute)) =
                sequential::outcome(spec, &plan, &experiment.configs[0], &groups)
            {
                let lines: Vec<String> = compared
                    .iter()
                    .map(|c| format!("- {}: {}", c.name, c.verdict))
                    .collect();
                blocks.push(Block::Text(format!("{}\n\n{compute}", lines.join("\n"))));
            }
        }
        if experiment.claims.is_empty() && experiment.sequential.is_none() {
            let rows: Vec<_> = groups
                .iter()
                .map(|g| row(&experiment.name, g, None))
                .collect();
            let imdb = groups.iter().any(|g| g.is_imdb());
            blocks.push(summary_table(&rows, imdb, false));
        }
    }
    let report = Report {
        blocks,
        ..Report::default()
    };
    // Without Markdown's two-space line breaks: an editor that trims them would otherwise make
    // the README differ from the records.
    let markdown = report.markdown();
    let text: Vec<&str> = markdown.lines().map(str::trim_end).collect();
    format!("{}\n", text.join("\n").trim())
}

/// One row per claim: the claim, the article's figure, attnx's, and the verdict.
fn claims_table(experiment: &Experiment, groups: &[&super::Group]) -> Block {
    let rows = experiment
        .claims
        .iter()
        .zip(verdict::verdicts(experiment, groups))
        .map(|(claim, v)| {
            vec![
                v.claim,
                verdict::article(experiment, &claim.test),
                v.measured,
                v.outcome.to_string(),
            ]
        })
        .collect();
    Block::TextTable {
        header: ["claim", "article", "attnx", "verdict"]
            .map(String::from)
            .to_vec(),
        rows,
    }
}

/// `text` with the part between [`BEGIN`] and [`END`] replaced by `generated`; `file` names
/// the README in errors.
pub fn splice(file: &str, text: &str, generated: &str) -> Result<String, InputError> {
    let missing = |marker: &str| {
        InputError(format!(
            "{file}: no line `{marker}` (the generated results go between the two markers)"
        ))
    };
    let begin = text.find(BEGIN).ok_or_else(|| missing(BEGIN))?;
    let after_begin = begin + BEGIN.len();
    let end = text[after_begin..]
        .find(END)
        .map(|i| after_begin + i)
        .ok_or_else(|| missing(END))?;
    Ok(format!(
        "{}\n\n{generated}\n{}",
        &text[..after_begin],
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splicing_replaces_only_the_part_between_the_markers_and_is_idempotent() {
        let readme = format!("# t\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
        let once = splice("R.md", &readme, "new table\n").unwrap();
        assert_eq!(
            once,
            format!("# t\n\nbefore\n{BEGIN}\n\nnew table\n\n{END}\nafter\n")
        );
        assert_eq!(splice("R.md", &once, "new table\n").unwrap(), once);

        let e = splice("R.md", "# t\n", "x").unwrap_err().to_string();
        assert!(
            e.starts_with("R.md: no line `<!-- attnx report: begin"),
            "{e}"
        );
        let reversed = format!("{END}\n{BEGIN}\n");
        let e = splice("R.md", &reversed, "x").unwrap_err().to_string();
        assert!(e.contains(END), "{e}");
    }
}
