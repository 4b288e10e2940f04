//! The report's plots, as SVG (plotters): loss curves (E1), accuracy per epoch (E2, E3), and
//! accuracy against a sweep's axis.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::heatmap::{Panel, heatmap_svg};
use super::scan::Group;
use crate::config::overrides::plain;
use crate::experiment::{Experiment, Point};
use crate::record::EpochMetrics;

/// A line with a band around it (min to max over repeats).
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend entry; `None` for lines the legend need not name (an accuracy plot names
    /// each config once, and its title says what solid, dotted and dashed lines are).
    pub label: Option<String>,
    pub x: Vec<f64>,
    pub mean: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// How the line is drawn.
    pub style: Line,
    /// Colour index: a config keeps its colour across its series.
    pub colour: usize,
}

/// Line styles: attnx's test figures solid, its training figures thin with dots at the points,
/// the article's figures dashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Solid,
    Dotted,
    Published,
}

#[derive(Debug, Clone)]
pub enum Plot {
    /// Training loss against step, log scale.
    Loss { title: String, series: Vec<Series> },
    /// Accuracy (%) against epoch.
    Accuracy { title: String, series: Vec<Series> },
    /// Echo: the share of pairs right (%) at each output position.
    Positions { title: String, series: Vec<Series> },
    /// Accuracy (%) against a sweep's first axis, with every repeat as a dot (x, accuracy,
    /// series); `categories` names the x positions of a non-numeric axis.
    Sweep {
        title: String,
        x_desc: String,
        categories: Option<Vec<String>>,
        series: Vec<Series>,
        dots: Vec<(f64, f64, usize)>,
    },
    /// Mean accuracy (%) over a two-axis grid ([`heatmap::Panel`]: `None` where nothing is
    /// recorded); rows are the second axis, columns the first.
    Heatmap { title: String, panel: Panel },
}

/// Mean, min and max of equally long rows.
fn band(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = rows.iter().map(Vec::len).min().unwrap_or(0);
    let mut mean = Vec::with_capacity(len);
    let mut low = Vec::with_capacity(len);
    let mut high = Vec::with_capacity(len);
    for i in 0..len {
        let column: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        mean.push(column.iter().sum::<f64>() / column.len() as f64);
        low.push(column.iter().copied().fold(f64::INFINITY, f64::min));
        high.push(column.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    }
    (mean, low, high)
}

/// The plots of one experiment, from its current configs' records.
pub fn for_experiment(experiment: &Experiment, groups: &[&Group]) -> Vec<(String, Plot)> {
    let mut loss = Vec::new();
    let mut accuracy = Vec::new();
    let mut positions = Vec::new();
    for (colour, group) in groups.iter().enumerate() {
        loss.extend(loss_series(group, colour));
        positions.extend(position_series(group, colour));
        accuracy.extend(accuracy_series(group, colour));
        if let Some(published) = experiment.published.get(&group.name) {
            for values in [&published.test_accuracy, &published.train_accuracy]
                .into_iter()
                .flatten()
            {
                accuracy.push(Series {
                    label: None,
                    x: (1..=values.len()).map(|e| e as f64).collect(),
                    mean: values.clone(),
                    low: values.clone(),
                    high: values.clone(),
                    style: Line::Published,
                    colour,
                });
            }
        }
    }
    // "e4_imdb" reads as "E4 IMDB" in a title.
    let title = experiment.name.to_uppercase().replace('_', " ");
    let mut plots = Vec::new();
    for group in groups {
        if let Some(plot) = confusion_plot(group) {
            plots.push((
                format!("{}_{}_confusion.svg", experiment.name, group.name),
                plot,
            ));
        }
    }
    if !loss.is_empty() {
        plots.push((
            format!("{}_loss.svg", experiment.name),
            Plot::Loss {
                title: format!("{title}: training loss"),
                series: loss,
            },
        ));
    }
    if !positions.is_empty() {
        plots.push((
            format!("{}_positions.svg", experiment.name),
            Plot::Positions {
                title: format!("{title}: pairs right at each output position (band: min-max)"),
                series: positions,
            },
        ));
    }
    if !accuracy.is_empty() {
        plots.push((
            format!("{}_accuracy.svg", experiment.name),
            Plot::Accuracy {
                title: format!(
                    "{title}: accuracy per epoch (solid: test, dotted: train, dashed: published)"
                ),
                series: accuracy,
            },
        ));
    }
    plots
}

/// A text task's confusion matrix over all its repeats, each true class's row in percent of
/// its texts, for more than two classes.
fn confusion_plot(group: &Group) -> Option<Plot> {
    let (labels, sum) = group.summed_confusion()?;
    if labels.len() <= 2 {
        return None;
    }
    let cells = sum
        .iter()
        .map(|row| {
            let total = row.iter().sum::<usize>().max(1) as f64;
            row.iter()
                .map(|&n| Some(100.0 * n as f64 / total))
                .collect()
        })
        .collect();
    Some(Plot::Heatmap {
        title: format!(
            "{}: confusion matrix, % of each true class ({} repeats)",
            group.label(),
            group.records.len()
        ),
        panel: Panel {
            title: String::new(),
            columns: labels.clone(),
            rows: labels,
            cells,
            x_desc: "predicted class".into(),
            y_desc: "true class".into(),
            decimals: Some(0),
        },
    })
}

/// The echo repeats' training-loss curves as one band (min to max) around their mean.
fn loss_series(group: &Group, colour: usize) -> Option<Series> {
    let curves: Vec<Vec<f64>> = group
        .records
        .iter()
        .filter(|r| r.epochs.is_empty() && !r.loss_curve.values.is_empty())
        .map(|r| r.loss_curve.values.iter().map(|&v| f64::from(v)).collect())
        .collect();
    if curves.is_empty() {
        return None;
    }
    let every = group.records[0].loss_curve.every as f64;
    let (mean, low, high) = band(&curves);
    Some(Series {
        label: Some(format!(
            "{} (mean of {}, band min-max)",
            group.label(),
            group.records.len()
        )),
        x: (1..=mean.len()).map(|i| i as f64 * every).collect(),
        mean,
        low,
        high,
        style: Line::Solid,
        colour,
    })
}

/// The echo repeats' share of pairs right at each output position, as a band around the mean.
fn position_series(group: &Group, colour: usize) -> Option<Series> {
    let rows = group.position_accuracies()?;
    let (mean, low, high) = band(&rows);
    Some(Series {
        label: Some(format!("{} (n = {})", group.label(), rows.len())),
        x: (1..=mean.len()).map(|p| p as f64).collect(),
        mean,
        low,
        high,
        style: Line::Solid,
        colour,
    })
}

/// The IMDB repeats' held-out (solid, labelled; test unless the label says validation) and
/// train (dotted) accuracy per epoch, as bands.
fn accuracy_series(group: &Group, colour: usize) -> Vec<Series> {
    let epochs = |pick: fn(&EpochMetrics) -> f64| -> Vec<Vec<f64>> {
        group
            .records
            .iter()
            .filter(|r| !r.epochs.is_empty())
            .map(|r| r.epochs.iter().map(pick).collect())
            .collect()
    };
    let split = match group.held_out_split() {
        "test" => String::new(),
        split => format!(", solid: {split}"),
    };
    let label = format!("{} (n = {}{split})", group.label(), group.records.len());
    [
        (Some(label), Line::Solid, epochs(|m| m.held_out.accuracy())),
        (None, Line::Dotted, epochs(|m| m.train_accuracy)),
    ]
    .into_iter()
    .filter(|(_, _, rows)| !rows.is_empty())
    .map(|(label, style, rows)| {
        let (mean, low, high) = band(&rows);
        Series {
            label,
            x: (1..=mean.len()).map(|e| e as f64).collect(),
            mean,
            low,
            high,
            style,
            colour,
        }
    })
    .collect()
}

/// Matplotlib's tab10 colours, the first six in the order earlier plots used: distinct for up to
/// ten configs (E4 IMDB compares eight).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

impl Plot {
    pub fn title(&self) -> &str {
        match self {
            Plot::Loss { title, .. }
            | Plot::Accuracy { title, .. }
            | Plot::Positions { title, .. }
            | Plot::Sweep { title, .. }
            | Plot::Heatmap { title, .. } => title,
        }
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        if let Plot::Heatmap { title, panel } = self {
            return heatmap_svg(title, std::slice::from_ref(panel));
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
            match self {
                Plot::Loss { title, series } => draw_loss(&root, title, series),
                Plot::Accuracy { title, series } => draw_accuracy(&root, title, series, "epoch"),
                Plot::Positions { title, series } => {
                    draw_accuracy(&root, title, series, "output position")
                }
                Plot::Sweep {
                    title,
                    x_desc,
                    categories,
                    series,
                    dots,
                } => draw_sweep(&root, title, x_desc, categories.as_deref(), series, dots),
                Plot::Heatmap { .. } => unreachable!("drawn above"),
            }
            .map_err(|e| anyhow!("plot {}: {e}", self.title()))?;
            root.present().map_err(|e| anyhow!("plot: {e}"))?;
        }
        Ok(svg)
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw_loss(root: &Area<'_>, title: &str, series: &[Series]) -> DrawResult {
    let x_max = series
        .iter()
        .flat_map(|s| s.x.iter().copied())
        .fold(1.0, f64::max);
    let y_min = series
        .iter()
        .flat_map(|s| s.low.iter().copied())
        .fold(f64::INFINITY, f64::min)
        .max(1e-4);
    let y_max = series
        .iter()
        .flat_map(|s| s.high.iter().copied())
        .fold(0.0, f64::max)
        .max(y_min * 10.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min * 0.8..y_max * 1.2).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("cross-entropy loss (mean per 100 steps, log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()?;
    draw_series(&mut chart, series, SeriesLabelPosition::UpperRight)
}

fn draw_accuracy(root: &Area<'_>, title: &str, series: &[Series], x_desc: &str) -> DrawResult {
    let epochs = series
        .iter()
        .flat_map(|s| s.x.iter().copied())
        .fold(1.0, f64::max);
    let lo = series
        .iter()
        .flat_map(|s| s.low.iter().copied())
        .fold(100.0, f64::min);
    let hi = series
        .iter()
        .flat_map(|s| s.high.iter().copied())
        .fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.08).max(0.5);
    // Room under the curves for the legend.
    let below = (hi - lo) * 0.45 + pad;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            0.8..epochs + 0.2,
            (lo - below).max(0.0)..(hi + pad).min(100.0),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("accuracy (%)")
        .x_labels(epochs as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    draw_series(&mut chart, series, SeriesLabelPosition::LowerRight)
}

fn draw_series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
    legend_at: SeriesLabelPosition,
) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for s in series {
        let colour = PALETTE[s.colour % PALETTE.len()];
        let points: Vec<(f64, f64)> = s.x.iter().copied().zip(s.mean.iter().copied()).collect();
        if s.style != Line::Published && s.low != s.high {
            let mut polygon: Vec<(f64, f64)> =
                s.x.iter().copied().zip(s.high.iter().copied()).collect();
            polygon.extend(s.x.iter().copied().zip(s.low.iter().copied()).rev());
            chart.draw_series(std::iter::once(Polygon::new(
                polygon,
                colour.mix(0.18).filled(),
            )))?;
        }
        let line = s.style;
        let drawn = match line {
            Line::Solid => chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?,
            Line::Dotted => {
                chart.draw_series(LineSeries::new(points, colour.stroke_width(1)).point_size(3))?
            }
            Line::Published => {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, colour.stroke_width(2)))?
            }
        };
        // One glyph shape for every style (two segments and a dot), so that the closure has
        // one return type: a gap makes it dashed, a dot marks the training line.
        let (gap, width, dot) = match line {
            Line::Solid => (0, 2, 0),
            Line::Dotted => (0, 1, 3),
            Line::Published => (5, 2, 0),
        };
        if let Some(label) = &s.label {
            drawn.label(label.clone()).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (12 - gap, 0)], colour.stroke_width(width))
                    + PathElement::new(vec![(12, 0), (24, 0)], colour.stroke_width(width))
                    + Circle::new((12, 0), dot, colour.filled())
            });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(legend_at)
        .draw()?;
    Ok(())
}

/// A sweep's accuracy against its first axis: for each config (and each value of the other
/// axes) the mean with its 95% confidence interval as a band, and every repeat as a dot. A
/// numeric axis is drawn to scale; any other axis as evenly spaced categories.
pub fn sweep(experiment: &Experiment, points: &[(&Point, Group)]) -> Option<Plot> {
    let axes = experiment.sweep.as_ref()?.parsed_axes().ok()?;
    let first = axes.first()?;
    let numeric = first.values.iter().all(serde_json::Value::is_number);
    let x_of = |value: &serde_json::Value| -> f64 {
        if numeric {
            value.as_f64().unwrap_or(0.0)
        } else {
            first.values.iter().position(|v| v == value).unwrap_or(0) as f64
        }
    };
    // One series per config and setting of the other axes, in the order of the points.
    let mut keys: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut dots = Vec::new();
    for (point, group) in points {
        let rest: Vec<String> = axes
            .iter()
            .zip(&point.values)
            .skip(1)
            .map(|(axis, v)| format!("{}={}", axis.key(), plain(v)))
            .collect();
        let key = match rest.is_empty() {
            true => point.config.name().to_string(),
            false => format!("{} [{}]", point.config.name(), rest.join(", ")),
        };
        let index = keys.iter().position(|k| k == &key).unwrap_or_else(|| {
            keys.push(key.clone());
            series.push(Series {
                label: Some(key.clone()),
                x: Vec::new(),
                mean: Vec::new(),
                low: Vec::new(),
                high: Vec::new(),
                style: Line::Solid,
                colour: keys.len() - 1,
            });
            keys.len() - 1
        });
        let accuracies = group.accuracies();
        let Some(summary) = crate::stats::Summary::of(&accuracies) else {
            continue;
        };
        let x = x_of(&point.values[0]);
        let (low, high) = summary.ci95.unwrap_or((summary.mean, summary.mean));
        let s = &mut series[index];
        s.x.push(x);
        s.mean.push(summary.mean);
        s.low.push(low);
        s.high.push(high);
        dots.extend(accuracies.iter().map(|&a| (x, a, index)));
    }
    let categories = (!numeric).then(|| first.values.iter().map(plain).collect());
    Some(Plot::Sweep {
        title: format!(
            "{}: accuracy against {} (mean, 95% CI band, dots: repeats)",
            experiment.name.to_uppercase().replace('_', " "),
            first.key()
        ),
        x_desc: first.key(),
        categories,
        series,
        dots,
    })
}

fn draw_sweep(
    root: &Area<'_>,
    title: &str,
    x_desc: &str,
    categories: Option<&[String]>,
    series: &[Series],
    dots: &[(f64, f64, usize)],
) -> DrawResult {
    let xs = || series.iter().flat_map(|s| s.x.iter().copied());
    let (x_lo, x_hi) = (
        xs().fold(f64::INFINITY, f64::min),
        xs().fold(f64::NEG_INFINITY, f64::max),
    );
    let x_pad = ((x_hi - x_lo) * 0.06).max(0.5);
    let ys = || {
        dots.iter().map(|d| d.1).chain(
            series
                .iter()
                .flat_map(|s| s.low.iter().chain(&s.high).copied()),
        )
    };
    let (lo, hi) = (ys().fold(100.0, f64::min), ys().fold(0.0, f64::max));
    let pad = ((hi - lo) * 0.08).max(0.5);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            x_lo - x_pad..x_hi + x_pad,
            (lo - pad).max(0.0)..(hi + pad).min(100.0),
        )?;
    let label = |x: &f64| match categories {
        Some(names) if (x - x.round()).abs() < 1e-9 && *x >= 0.0 => {
            names.get(x.round() as usize).cloned().unwrap_or_default()
        }
        Some(_) => String::new(),
        None => format!("{x}"),
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc("accuracy (%)")
        .x_label_formatter(&label)
        .y_label_formatter(&|y| format!("{y:.0}"));
    if let Some(names) = categories {
        mesh.x_labels(names.len() * 2 + 1);
    }
    mesh.draw()?;
    // Repeats as dots, each series nudged sideways so that the dots of one x stay apart.
    let nudge = (x_hi - x_lo).max(1.0) * 0.012;
    let centre = (series.len() as f64 - 1.0) / 2.0;
    chart.draw_series(dots.iter().map(|&(x, y, s)| {
        let colour = PALETTE[series[s].colour % PALETTE.len()];
        Circle::new(
            (x + (s as f64 - centre) * nudge, y),
            2,
            colour.mix(0.55).filled(),
        )
    }))?;
    draw_series(&mut chart, series, SeriesLabelPosition::LowerRight)
}

/// For a sweep of exactly two axes, one heatmap of mean accuracy per config, named
/// `<experiment>_<config>_heatmap.svg`.
pub fn sweep_heatmaps(experiment: &Experiment, points: &[(&Point, Group)]) -> Vec<(String, Plot)> {
    let Some(Ok(axes)) = experiment.sweep.as_ref().map(|s| s.parsed_axes()) else {
        return Vec::new();
    };
    let [x_axis, y_axis] = &axes[..] else {
        return Vec::new();
    };
    let mut plots = Vec::new();
    for config in &experiment.configs {
        let mut cells = vec![vec![None; x_axis.values.len()]; y_axis.values.len()];
        for (point, group) in points.iter().filter(|(p, _)| p.config.name() == config) {
            let column = x_axis.values.iter().position(|v| v == &point.values[0]);
            let row = y_axis.values.iter().position(|v| v == &point.values[1]);
            if let (Some(c), Some(r), Some(summary)) =
                (column, row, crate::stats::Summary::of(&group.accuracies()))
            {
                cells[r][c] = Some(summary.mean);
            }
        }
        // The second axis's first value at the bottom.
        cells.reverse();
        plots.push((
            format!("{}_{config}_heatmap.svg", experiment.name),
            Plot::Heatmap {
                title: format!(
                    "{}: {config}, mean accuracy (%), darker is higher",
                    experiment.name.to_uppercase().replace('_', " ")
                ),
                panel: Panel {
                    title: String::new(),
                    x_desc: x_axis.key(),
                    y_desc: y_axis.key(),
                    columns: x_axis.values.iter().map(plain).collect(),
                    rows: y_axis.values.iter().rev().map(plain).collect(),
                    cells,
                    decimals: Some(1),
                },
            },
        ));
    }
    plots
}
