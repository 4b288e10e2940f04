//! Text tables aligned for the terminal, and the report's number formats.

use std::fmt::Write;

/// Left-aligns the first column, right-aligns the others (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_aligned(header, rows, &[0])
}

/// Left-aligns the columns `left` (text), right-aligns the others.
pub fn table_aligned(header: &[&str], rows: &[Vec<String>], left: &[usize]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            let gap = if i == 0 { "" } else { "  " };
            if left.contains(&i) {
                let _ = write!(text, "{gap}{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(text, "{gap}{cell:>w$}", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

/// Whole percentages (echo: 100 pairs) without decimals, others with two.
pub fn percent(a: f64) -> String {
    if a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.2}")
    }
}

pub fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}"))
}

/// `p = ...` to 4 decimals, in scientific notation below 0.001, or a bound where double
/// precision runs out.
pub fn format_p(p: f64) -> String {
    if p < 1e-12 {
        "p < 1e-12".to_string()
    } else if p < 1e-3 {
        format!("p = {p:.2e}")
    } else {
        format!("p = {p:.4}")
    }
}

/// `1 point`, `2.5 points`.
pub fn points(x: f64) -> String {
    if x == 1.0 {
        "1 point".into()
    } else {
        format!("{x} points")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["config", "n"],
            &[
                vec!["attention".into(), "10".into()],
                vec!["b".into(), "2".into()],
            ],
        );
        assert_eq!(t, "config      n\nattention  10\nb           2\n");
    }
}
