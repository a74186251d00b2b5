//! Purity over training (the reference's `<type>_train.png`) and the before/after
//! distribution of prototype purities.
use super::canvas::Canvas;
use crate::disentangle::History;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::invalid("plot", e.to_string())
}

/// Tick labels of a count axis: whole numbers only ("1400", not "1400.0"), no
/// label between them.
fn whole(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// Mean purity per epoch (line) and at each step's prototype selection (dots,
/// labelled with m), as a 1000×600 picture: SVG when `path` ends in `.svg`,
/// else PNG (or JPEG by its extension).
pub fn purity_curve(history: &History, title: &str, path: &Path) -> Result<()> {
    if is_svg(path) {
        return write_svg(path, &svg(SIZE, |area| draw_curve(&area, history, title))?);
    }
    purity_curve_canvas(history, title)?.save(path)
}

/// The purity curve of [`purity_curve`], drawn on a 1000×600 canvas.
pub fn purity_curve_canvas(history: &History, title: &str) -> Result<Canvas> {
    super::ensure_font();
    let mut canvas = Canvas::new(SIZE.0, SIZE.1, [255, 255, 255]);
    {
        let area = BitMapBackend::with_buffer(canvas.image.as_mut(), SIZE).into_drawing_area();
        draw_curve(&area, history, title)?;
        area.present().map_err(plot_err)?;
    }
    Ok(canvas)
}

/// Draws the purity curve on `area`, whatever its backend.
fn draw_curve<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, history: &History, title: &str) -> Result<()> {
    // x: the selection of step s sits at x = s·E, its epochs at s·E + 1 … s·E + E.
    let e = (history.epochs.len() / history.steps.len().max(1)).max(1);
    let epochs: Vec<(f64, f64)> =
        history.epochs.iter().enumerate().map(|(i, (_, p))| ((i / e * (e + 1) + i % e + 1) as f64, *p)).collect();
    let steps: Vec<(f64, f64, usize)> =
        history.steps.iter().enumerate().map(|(s, (m, p))| ((s * (e + 1)) as f64, *p, *m)).collect();
    let all: Vec<f64> = epochs.iter().map(|p| p.1).chain(steps.iter().map(|p| p.1)).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) =
        if lo.is_finite() { (lo - 0.05 * (hi - lo + 1e-3), hi + 0.05 * (hi - lo + 1e-3)) } else { (0.0, 1.0) };
    let x_max = (steps.len() * (e + 1)).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..x_max, lo..hi)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("schedule step · epoch")
        .y_desc("mean argmax purity")
        .x_label_formatter(&whole)
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(LineSeries::new(epochs.iter().copied(), BLUE.stroke_width(2)))
        .map_err(plot_err)?
        .label("after each epoch")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(steps.iter().map(|&(x, y, _)| Circle::new((x, y), 5, RED.filled())))
        .map_err(plot_err)?
        .label("prototypes re-selected (m)")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
    chart
        // Each label above and right of its dot, not on it.
        .draw_series(
            steps
                .iter()
                .map(|&(x, y, m)| EmptyElement::at((x, y)) + Text::new(format!("m={m}"), (7, -22), ("sans-serif", 15))),
        )
        .map_err(plot_err)?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_err)?;
    Ok(())
}

/// Histograms of per-prototype purity before and after training, as a 1000×600
/// picture: SVG when `path` ends in `.svg`, else PNG (or JPEG by its extension).
pub fn purity_histogram(before: &[f64], after: &[f64], title: &str, path: &Path) -> Result<()> {
    if is_svg(path) {
        return write_svg(path, &svg(SIZE, |area| draw_histogram(&area, before, after, title))?);
    }
    purity_histogram_canvas(before, after, title)?.save(path)
}

/// The histograms of [`purity_histogram`], drawn on a 1000×600 canvas.
pub fn purity_histogram_canvas(before: &[f64], after: &[f64], title: &str) -> Result<Canvas> {
    super::ensure_font();
    let mut canvas = Canvas::new(SIZE.0, SIZE.1, [255, 255, 255]);
    {
        let area = BitMapBackend::with_buffer(canvas.image.as_mut(), SIZE).into_drawing_area();
        draw_histogram(&area, before, after, title)?;
        area.present().map_err(plot_err)?;
    }
    Ok(canvas)
}

/// Draws the histograms on `area`, whatever its backend.
fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    before: &[f64],
    after: &[f64],
    title: &str,
) -> Result<()> {
    const BINS: usize = 40;
    // The range of the data, widened to multiples of 0.05 (purity lies in [-1, 1]).
    let finite = || before.iter().chain(after).copied().filter(|v| v.is_finite());
    let lo = (finite().fold(f64::INFINITY, f64::min).max(-1.0) / 0.05).floor() * 0.05;
    let hi = (finite().fold(f64::NEG_INFINITY, f64::max).min(1.0) / 0.05).ceil() * 0.05;
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (-1.0, 1.0) };
    let w = (hi - lo) / BINS as f64;
    let bin = |v: f64| (((v - lo) / w).floor().max(0.0) as usize).min(BINS - 1);
    let count = |xs: &[f64]| {
        let mut c = vec![0usize; BINS];
        xs.iter().filter(|v| v.is_finite()).for_each(|&v| c[bin(v)] += 1);
        c
    };
    let (cb, ca) = (count(before), count(after));
    let top = cb.iter().chain(&ca).copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("argmax purity of a prototype")
        .y_desc("prototypes")
        .y_label_formatter(&whole)
        .draw()
        .map_err(plot_err)?;
    for (counts, color, label) in [(&cb, RED.mix(0.45), "before training"), (&ca, BLUE.mix(0.45), "after training")] {
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, n as f64)], color.filled())
            }))
            .map_err(plot_err)?
            .label(format!(
                "{label} (n = {}, mean {:.3})",
                counts.iter().sum::<usize>(),
                mean(if label.starts_with("before") { before } else { after })
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(plot_err)?;
    Ok(())
}

/// The pixel size of each plot.
const SIZE: (u32, u32) = (1000, 600);

fn is_svg(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"))
}

/// An SVG document of `size` drawn by `draw` (vector output for papers).
fn svg(size: (u32, u32), draw: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> Result<()>) -> Result<String> {
    // Text is laid out with the same embedded font as the PNGs.
    super::ensure_font();
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, size).into_drawing_area();
        area.fill(&WHITE).map_err(plot_err)?;
        draw(area.clone())?;
        area.present().map_err(plot_err)?;
    }
    Ok(text)
}

fn write_svg(path: &Path, text: &str) -> Result<()> {
    crate::io::atomic::write_bytes_atomic(path, text.as_bytes())
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// A training run's purity as a value: the curve over training and the
/// before/after histogram of per-prototype purities, drawn as one picture.
#[derive(Debug, Clone, PartialEq)]
pub struct PurityPlot {
    /// Appears in both plots' titles (e.g. the matrix type).
    pub title: String,
    /// Purity over training.
    pub history: History,
    /// Per-prototype purities before and after training (e.g. of the top-5).
    pub before: Vec<f64>,
    /// Per-prototype purities after training.
    pub after: Vec<f64>,
}

impl PurityPlot {
    /// The curve above the histogram as one SVG document, 1000×1200.
    pub fn svg(&self) -> Result<String> {
        svg((SIZE.0, 2 * SIZE.1), |area| {
            let (top, bottom) = area.split_vertically(SIZE.1);
            draw_curve(&top, &self.history, &format!("Average purity over training ({})", self.title))?;
            draw_histogram(&bottom, &self.before, &self.after, &format!("Purity of the prototypes ({})", self.title))
        })
    }

    /// Writes the picture: SVG when `path` ends in `.svg`, else a PNG/JPEG of [`canvas`](Self::canvas).
    pub fn save(&self, path: &Path) -> Result<()> {
        if is_svg(path) {
            return write_svg(path, &self.svg()?);
        }
        self.canvas()?.save(path)
    }

    /// The curve above the histogram: 1000×1208 pixels.
    pub fn canvas(&self) -> Result<Canvas> {
        let curve = purity_curve_canvas(&self.history, &format!("Average purity over training ({})", self.title))?;
        let hist =
            purity_histogram_canvas(&self.before, &self.after, &format!("Purity of the prototypes ({})", self.title))?;
        Ok(Canvas::stack(&[curve, hist], true, 8))
    }

    /// Mean purity before, per schedule step, and after.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self.history.steps.iter().map(|(m, p)| format!("m={m}: {p:.4}")).collect();
        format!(
            "purity ({}): before {:.4}; at each step {}; after {:.4}",
            self.title,
            mean(&self.before),
            if steps.is_empty() { "-".to_string() } else { steps.join(", ") },
            mean(&self.after)
        )
    }
}
