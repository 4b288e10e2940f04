//! The report as pages (`report/index.html` and a page per config's repeats): the same
//! [`Block`]s as REPORT.md, with verdicts in colour and words, the variants folded away and
//! each config's repeats one click away. Self-contained (inline CSS, no script, no network)
//! and the same bytes for the same records, so that it can be committed and diffed.

use std::fmt::Write as _;

use super::document::{Block, Mark, OverviewRow, Report, slug};
use super::repeats::{Curve, RepeatsPage};
use super::verdict::Outcome;

/// The folder the pages go in, inside the report's output folder.
pub const DIR: &str = "report";

/// Every page's style: readable at a phone's width (tables become one card per row there,
/// so none is wider than the screen), colour never the only signal.
const STYLE: &str = "
:root { --fg: #1b1f24; --muted: #57606a; --rule: #d0d7de; --head: #f6f8fa; --link: #0550ae;
  --good: #dafbe1; --good-fg: #116329; --bad: #ffebe9; --bad-fg: #a40e26;
  --unsure: #fff8c5; --unsure-fg: #7d4e00; --none: #eaeef2; --none-fg: #424a53; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 2.5rem 0 .75rem; padding-top: .75rem; border-top: 2px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
a { color: var(--link); }
p { margin: .5rem 0; }
p.note { color: var(--muted); font-size: .9rem; }
code { font: .9em ui-monospace, 'DejaVu Sans Mono', monospace; }
pre { background: var(--head); padding: .75rem; border: 1px solid var(--rule);
  white-space: pre-wrap; overflow-wrap: anywhere; font: .85rem/1.4 ui-monospace, 'DejaVu Sans Mono', monospace; }
table { border-collapse: collapse; margin: .75rem 0 1rem; font-size: .9rem; max-width: 100%; }
th, td { border: 1px solid var(--rule); padding: .3rem .5rem; vertical-align: top; }
/* A cell's long word (a seed, a device) may break so that the table fits; a header's may not. */
td { overflow-wrap: anywhere; }
th { background: var(--head); text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.overview td:first-child, table.overview th:first-child { white-space: nowrap; overflow-wrap: normal; }
.mark { display: inline-block; padding: 0 .45rem; border-radius: .75rem; font-weight: 600; white-space: nowrap; }
.mark.reproduced, .mark.decided { background: var(--good); color: var(--good-fg); }
.mark.not-reproduced { background: var(--bad); color: var(--bad-fg); }
.mark.inconclusive, .mark.undecided { background: var(--unsure); color: var(--unsure-fg); }
.mark.not-run, .mark.no-claim { background: var(--none); color: var(--none-fg); }
.mark.reproduced::before, .mark.decided::before { content: '\\2713\\a0'; }
.mark.not-reproduced::before { content: '\\2717\\a0'; }
.mark.inconclusive::before, .mark.undecided::before { content: '?\\a0'; }
.counts { font-size: 1rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); gap: 1rem; margin: 1rem 0; }
figure { margin: 0; border: 1px solid var(--rule); padding: .5rem; }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .25rem; }
details { margin: 1rem 0; border: 1px solid var(--rule); padding: .25rem .75rem; }
summary { cursor: pointer; font-weight: 600; padding: .25rem 0; }
svg.curve { display: block; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
@media (max-width: 720px) {
  main { padding: .75rem .75rem 2rem; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--rule); margin: 0 0 .6rem; padding: .3rem .5rem; }
  td { border: none; padding: .1rem 0; text-align: left; }
  td.num { text-align: left; }
  td[data-label]::before { content: attr(data-label) ': '; color: var(--muted); }
}
";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with `code` spans in backticks set as code.
fn inline(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// The CSS class of a mark ([`Mark`]) and its words.
fn mark(mark: &Mark) -> String {
    let class = match mark {
        Mark::Verdict(Outcome::Reproduced) => "reproduced",
        Mark::Verdict(Outcome::NotReproduced) => "not-reproduced",
        Mark::Verdict(Outcome::Inconclusive) => "inconclusive",
        Mark::Decided(_) => "decided",
        Mark::Undecided => "undecided",
        Mark::NotRun => "not-run",
        Mark::NoClaim => "no-claim",
    };
    format!(
        "<span class=\"mark {class}\">{}</span>",
        escape(&mark.to_string())
    )
}

/// A table, each cell labelled with its column (the phone layout shows the labels); the
/// columns `words` says hold words, the others numbers (right-aligned). Cells are HTML already.
fn table(
    out: &mut String,
    header: &[String],
    rows: &[Vec<String>],
    words: impl Fn(usize) -> bool,
    class: &str,
) {
    let _ = write!(out, "<table class=\"{class}\">\n<thead><tr>");
    for h in header {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, (cell, h)) in row.iter().zip(header).enumerate() {
            let num = if words(i) { "" } else { " class=\"num\"" };
            let _ = write!(out, "<td{num} data-label=\"{}\">{cell}</td>", escape(h));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// Counts of the overview's marks, as a line: "24 claims: 14 reproduced, ...".
fn counts(rows: &[OverviewRow]) -> String {
    let count = |pick: &dyn Fn(&Mark) -> bool| rows.iter().filter(|r| pick(&r.mark)).count();
    let claims = count(&|m| matches!(m, Mark::Verdict(_)));
    let mut parts = vec![format!(
        "{claims} claims: {} reproduced, {} not reproduced, {} inconclusive",
        count(&|m| *m == Mark::Verdict(Outcome::Reproduced)),
        count(&|m| *m == Mark::Verdict(Outcome::NotReproduced)),
        count(&|m| *m == Mark::Verdict(Outcome::Inconclusive)),
    )];
    let decided = count(&|m| matches!(m, Mark::Decided(_)));
    let undecided = count(&|m| *m == Mark::Undecided);
    if decided + undecided > 0 {
        parts.push(format!(
            "{} run-until-decided comparisons: {decided} decided, {undecided} undecided",
            decided + undecided
        ));
    }
    let not_run = count(&|m| *m == Mark::NotRun);
    if not_run > 0 {
        parts.push(format!("{not_run} rows not run yet"));
    }
    parts.join("; ") + "."
}

/// The blocks as HTML; a leading heading is the page's title (`<h1 id="top">`) only when
/// `titled`, so that a fold's own heading never makes a second one.
fn blocks(out: &mut String, blocks: &[Block], titled: bool) {
    let mut first = titled;
    let mut i = 0;
    while i < blocks.len() {
        match &blocks[i] {
            Block::Heading(h) if first => {
                let _ = writeln!(out, "<h1 id=\"top\">{}</h1>", escape(h));
            }
            Block::Heading(h) => {
                let _ = writeln!(
                    out,
                    "<h2 id=\"{}\">{}</h2>\n<p class=\"note\"><a href=\"#top\">back to the overview</a></p>",
                    slug(h),
                    escape(h)
                );
            }
            Block::Subheading(h) => {
                let _ = writeln!(out, "<h3>{}</h3>", escape(h));
            }
            Block::Text(t) => {
                let lines: Vec<String> = t.lines().map(inline).collect();
                let _ = writeln!(out, "<p>{}</p>", lines.join("<br>\n"));
            }
            Block::Table { header, rows } => {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| r.iter().map(|c| escape(c)).collect())
                    .collect();
                table(out, header, &rows, |i| i == 0, "numbers");
            }
            Block::TextTable { header, rows } => {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| r.iter().map(|c| escape(c)).collect())
                    .collect();
                table(out, header, &rows, |_| true, "words");
            }
            Block::Image { .. } => {
                // Consecutive plots side by side.
                out.push_str("<div class=\"figures\">\n");
                while let Some(Block::Image { alt, path }) = blocks.get(i) {
                    let src = format!("../{path}");
                    let _ = writeln!(
                        out,
                        "<figure><a href=\"{src}\"><img src=\"{src}\" alt=\"{alt}\" width=\"900\" height=\"540\"></a><figcaption>{}</figcaption></figure>",
                        escape(alt),
                        src = escape(&src),
                        alt = escape(alt)
                    );
                    i += 1;
                }
                out.push_str("</div>\n");
                continue;
            }
            Block::Overview(rows) => {
                let _ = writeln!(out, "<p class=\"counts\">{}</p>", escape(&counts(rows)));
                let header = super::document::OVERVIEW_HEADER.map(String::from);
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            format!(
                                "<a href=\"#{}\">{}</a>",
                                slug(&r.section),
                                escape(&r.experiment)
                            ),
                            escape(&r.claim),
                            escape(&r.article),
                            escape(&r.attnx),
                            escape(&r.test),
                            mark(&r.mark),
                        ]
                    })
                    .collect();
                table(out, &header, &cells, |_| true, "overview");
            }
            Block::Verdicts(verdicts) => {
                let header = super::document::VERDICTS_HEADER.map(String::from);
                let rows: Vec<Vec<String>> = verdicts
                    .iter()
                    .map(|v| {
                        vec![
                            escape(&v.claim),
                            escape(&v.measured),
                            escape(&v.test),
                            mark(&Mark::Verdict(v.outcome)),
                        ]
                    })
                    .collect();
                table(out, &header, &rows, |_| true, "verdicts");
            }
            Block::Fold {
                title,
                blocks: inner,
            } => {
                let _ = writeln!(out, "<details>\n<summary>{}</summary>", escape(title));
                self::blocks(out, inner, false);
                out.push_str("</details>\n");
            }
            Block::Repeats(links) => {
                let links: Vec<String> = links
                    .iter()
                    .map(|(label, file)| {
                        format!("<a href=\"{}\">{}</a>", escape(file), escape(label))
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "<p class=\"repeats\">Every repeat, with its seed, machine and curve: {}</p>",
                    links.join(", ")
                );
            }
        }
        first = false;
        i += 1;
    }
}

/// `report/index.html`: the whole report.
pub fn index(report: &Report) -> String {
    let mut body = String::new();
    blocks(&mut body, &report.blocks, true);
    document("attnx report", &body)
}

/// A repeat's curve as a small inline SVG, on the page's common scale (`low` to `high`).
fn sparkline(points: &[f64], curve: Curve, (low, high): (f64, f64)) -> String {
    const W: f64 = 160.0;
    const H: f64 = 36.0;
    let scale = |v: f64| match curve {
        Curve::Loss => v.max(1e-6).ln(),
        Curve::Accuracy => v,
    };
    let (lo, hi) = (scale(low), scale(high));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = points.len();
    // A diverged run's NaN or infinite loss is left out of the line, not drawn as a value.
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| {
            let x = if n > 1 {
                2.0 + (W - 4.0) * i as f64 / (n - 1) as f64
            } else {
                W / 2.0
            };
            let y = 2.0 + (H - 4.0) * (1.0 - (scale(v) - lo) / span);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let last = points.last().map_or(String::new(), |v| format!("{v:.3}"));
    format!(
        "<svg class=\"curve\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}, last {last}\"><polyline fill=\"none\" stroke=\"#0550ae\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        curve.describe(),
        coords.join(" ")
    )
}

/// A config's page of repeats.
pub fn repeats_page(page: &RepeatsPage) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p class=\"note\"><a href=\"../index.html\">attnx report</a></p>\n<h1 id=\"top\">{}: every repeat</h1>",
        escape(&page.label)
    );
    body.push_str("<dl class=\"facts\">\n");
    for (name, value) in &page.facts {
        let _ = writeln!(body, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
    }
    body.push_str("</dl>\n");
    let values: Vec<f64> = page
        .rows
        .iter()
        .flat_map(|r| r.curve.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let range = (
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    if !values.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"note\">curve: {}, every repeat on one scale, {:.3} to {:.3}.</p>",
            page.curve.describe(),
            range.0,
            range.1
        );
    }
    let rows: Vec<Vec<String>> = page
        .rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = r.cells.iter().map(|c| escape(c)).collect();
            cells.push(if r.curve.is_empty() {
                "-".into()
            } else {
                sparkline(&r.curve, page.curve, range)
            });
            cells
        })
        .collect();
    // The repeat's figures are numbers; its device, machine, version and curve are not.
    let words = ["device", "machine", "attnx", "curve", "epochs"];
    let header = &page.header;
    table(
        &mut body,
        header,
        &rows,
        |i| words.contains(&header[i].as_str()),
        "repeats",
    );
    body.push_str("<h2 id=\"config\">The config</h2>\n");
    let _ = writeln!(body, "<pre>{}</pre>", escape(&page.config));
    document(&format!("attnx: {}", page.label), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_code_spans_kept() {
        assert_eq!(escape("a < b & \"c\""), "a &lt; b &amp; &quot;c&quot;");
        assert_eq!(
            inline("run `attnx compare <x>` now"),
            "run <code>attnx compare &lt;x&gt;</code> now"
        );
    }

    #[test]
    fn sparklines_share_the_page_scale() {
        let low = sparkline(&[1.0, 1.0], Curve::Accuracy, (0.0, 2.0));
        let high = sparkline(&[2.0, 2.0], Curve::Accuracy, (0.0, 2.0));
        // y grows downwards: the higher curve is drawn nearer the top.
        assert!(low.contains("points=\"2.0,18.0 158.0,18.0\""), "{low}");
        assert!(high.contains("points=\"2.0,2.0 158.0,2.0\""), "{high}");
    }
}
