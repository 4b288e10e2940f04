//! Heatmaps, as SVG: one renderer for a sweep's grid of mean accuracies and for a model's
//! attention weights (one panel or several), and the shaded words of a review.

use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// One panel: `cells[row][column]` (`None`: nothing there), the first row at the top.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    pub cells: Vec<Vec<Option<f64>>>,
    pub x_desc: String,
    pub y_desc: String,
    /// Decimals of the values written on the cells; `None` writes none (a wide panel).
    pub decimals: Option<usize>,
}

/// White for the panel's lowest value to dark blue for its highest.
fn shade(value: f64, (lo, hi): (f64, f64)) -> (RGBColor, bool) {
    let depth = if hi - lo < 1e-12 {
        1.0
    } else {
        ((value - lo) / (hi - lo)).clamp(0.0, 1.0)
    };
    let lerp = |a: f64, b: f64| (a + (b - a) * depth).round() as u8;
    (
        RGBColor(lerp(255.0, 8.0), lerp(255.0, 48.0), lerp(255.0, 107.0)),
        depth > 0.55,
    )
}

/// The panels side by side (two per row when there are several) under `title`, as an SVG
/// document. A single panel with many columns is drawn wide, its column names turned.
pub fn heatmap_svg(title: &str, panels: &[Panel]) -> Result<String> {
    let wide = panels.len() == 1 && panels[0].columns.len() > 20;
    let (cols, rows) = if panels.len() == 1 {
        (1, 1)
    } else {
        (2, panels.len().div_ceil(2))
    };
    let size = if wide {
        (1600, 420)
    } else {
        (900, 60 + 420 * rows as u32)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("heatmap: {e}"))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| anyhow!("heatmap: {e}"))?;
        for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
            draw_panel(area, panel, wide).map_err(|e| anyhow!("heatmap {title}: {e}"))?;
        }
        root.present().map_err(|e| anyhow!("heatmap: {e}"))?;
    }
    Ok(svg)
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    panel: &Panel,
    wide: bool,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (nx, ny) = (panel.columns.len() as i32, panel.rows.len() as i32);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(if wide { 110 } else { 44 })
        .y_label_area_size(if panel.y_desc.is_empty() { 16 } else { 64 })
        // A segmented range `0..n` has n + 1 segments: end one short.
        .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())?;
    let label = |names: &[String], v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // Row 0 is drawn at the top.
    let rows_bottom_up: Vec<String> = panel.rows.iter().rev().cloned().collect();
    let x_style = if wide {
        ("sans-serif", 12)
            .into_font()
            .transform(FontTransform::Rotate90)
    } else {
        ("sans-serif", 14).into_font()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nx as usize)
        .y_labels(ny as usize)
        .x_label_style(x_style)
        .x_label_formatter(&|v| label(&panel.columns, v))
        .y_label_formatter(&|v| label(&rows_bottom_up, v))
        .x_desc(panel.x_desc.as_str())
        .y_desc(panel.y_desc.as_str())
        .draw()?;
    let values = || panel.cells.iter().flatten().flatten().copied();
    let range = (
        values().fold(f64::INFINITY, f64::min),
        values().fold(f64::NEG_INFINITY, f64::max),
    );
    let cell = |row: i32, col: i32| panel.cells[row as usize][col as usize];
    let grid = || (0..ny).flat_map(|row| (0..nx).map(move |col| (row, col)));
    chart.draw_series(grid().map(|(row, col)| {
        let fill = cell(row, col).map_or(WHITE, |v| shade(v, range).0);
        Rectangle::new(
            [
                (SegmentValue::Exact(col), SegmentValue::Exact(ny - 1 - row)),
                (SegmentValue::Exact(col + 1), SegmentValue::Exact(ny - row)),
            ],
            fill.filled(),
        )
    }))?;
    if let Some(decimals) = panel.decimals {
        // The values themselves, for reading exact figures.
        chart.draw_series(grid().map(|(row, col)| {
            let value = cell(row, col);
            let ink = if value.is_some_and(|v| shade(v, range).1) {
                WHITE
            } else {
                BLACK
            };
            Text::new(
                value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}")),
                (
                    SegmentValue::CenterOf(col),
                    SegmentValue::CenterOf(ny - 1 - row),
                ),
                ("sans-serif", 13).into_font().color(&ink),
            )
        }))?;
    }
    Ok(())
}

/// A review as wrapped words, each on a box shaded by the attention it receives.
pub fn tokens_svg(title: &str, subtitle: &str, tokens: &[(String, f32)]) -> Result<String> {
    const WIDTH: i32 = 1100;
    const MARGIN: i32 = 24;
    const LINE: i32 = 30;
    const CHAR: i32 = 9; // width of a 15 px sans-serif character, roughly
    let max = tokens.iter().map(|t| f64::from(t.1)).fold(0.0, f64::max);
    // Lay the words out first, to know the height.
    let mut placed = Vec::with_capacity(tokens.len());
    let (mut x, mut y) = (MARGIN, 80);
    for (word, value) in tokens {
        let w = CHAR * word.chars().count() as i32 + 10;
        if x + w > WIDTH - MARGIN {
            (x, y) = (MARGIN, y + LINE);
        }
        placed.push((x, y, w, word, f64::from(*value)));
        x += w + 6;
    }
    let height = (y + LINE + MARGIN) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH as u32, height)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("heatmap: {e}");
        root.fill(&WHITE).map_err(err)?;
        let grey = RGBColor(90, 90, 90);
        root.draw(&Text::new(
            title.to_string(),
            (MARGIN, 16),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            subtitle.to_string(),
            (MARGIN, 46),
            ("sans-serif", 14).into_font().color(&grey),
        ))
        .map_err(err)?;
        for (x, y, w, word, value) in placed {
            let (fill, dark) = shade(value, (0.0, max));
            root.draw(&Rectangle::new(
                [(x, y), (x + w, y + LINE - 6)],
                fill.filled(),
            ))
            .map_err(err)?;
            let ink = if dark { WHITE } else { BLACK };
            root.draw(&Text::new(
                word.clone(),
                (x + 5, y + 4),
                ("sans-serif", 15).into_font().color(&ink),
            ))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
