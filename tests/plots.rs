//! The purity plots as a reader of a paper needs them: whole-number ticks on
//! counts and epochs, "m=" labels beside their dots rather than on them, and
//! vector output (SVG) by the file's extension, the same plot as the PNG.
use epic::disentangle::History;
use epic::render::{purity_curve, purity_histogram, PurityPlot};

fn history() -> History {
    History {
        steps: vec![(10, 0.05), (7, 0.064), (3, 0.078)],
        epochs: vec![(10, 0.044), (10, 0.052), (7, 0.063), (7, 0.065), (3, 0.078), (3, 0.08)],
    }
}

/// The texts of an SVG document's `<text …>…</text>` elements, with their x, y.
fn texts(svg: &str) -> Vec<(f64, f64, String)> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let attr = |name: &str| -> Option<f64> {
                let at = t.find(&format!(" {name}=\""))? + name.len() + 3;
                t[at..t[at..].find('"')? + at].parse().ok()
            };
            let body = &t[t.find('>')? + 1..t.find("</text>")?];
            Some((attr("x")?, attr("y")?, body.trim().to_string()))
        })
        .collect()
}

fn numbers(svg: &str) -> Vec<String> {
    texts(svg).into_iter().map(|t| t.2).filter(|s| s.parse::<f64>().is_ok()).collect()
}

#[test]
fn svg_plots_have_whole_number_counts_and_epochs_and_labels_beside_their_dots() {
    let dir = tempfile::tempdir().unwrap();
    let curve = dir.path().join("curve.svg");
    purity_curve(&history(), "orthogonal", &curve).unwrap();
    let svg = std::fs::read_to_string(&curve).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..80]);
    assert!(svg.contains("orthogonal") && svg.contains("mean argmax purity"));
    // x ticks: whole epochs 0 … 9 (3 steps × (2 epochs + 1)), none like "1.0" or "0.5".
    let ticks = numbers(&svg);
    for e in 0..=8 {
        assert!(ticks.contains(&e.to_string()), "epoch {e} has no tick: {ticks:?}");
    }
    assert!(!ticks.iter().any(|t| t.ends_with(".0") || t == "0.5" || t == "1.5"), "{ticks:?}");
    // Each "m=" label sits above and right of its dot: not on it.
    let dots: Vec<(f64, f64)> = svg
        .split("<circle")
        .skip(1)
        .map(|c| {
            let v = |n: &str| {
                let at = c.find(&format!("{n}=\"")).unwrap() + n.len() + 2;
                c[at..at + c[at..].find('"').unwrap()].parse::<f64>().unwrap()
            };
            (v("cx"), v("cy"))
        })
        .collect();
    let labels: Vec<(f64, f64, String)> = texts(&svg).into_iter().filter(|t| t.2.starts_with("m=")).collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    for (x, y, text) in &labels {
        let (dx, dy) = dots
            .iter()
            .map(|d| (x - d.0, y - d.1))
            .min_by(|a, b| (a.0.abs() + a.1.abs()).total_cmp(&(b.0.abs() + b.1.abs())))
            .unwrap();
        assert!(dx >= 5.0 && dy <= -15.0, "{text} at ({x}, {y}) sits on its dot (offset {dx}, {dy})");
    }

    // The histogram: counts are whole numbers.
    let before: Vec<f64> = (0..1400).map(|i| 0.02 + 0.1 * ((i * 37 % 100) as f64 / 100.0)).collect();
    let after: Vec<f64> = before.iter().map(|p| p + 0.03).collect();
    let hist = dir.path().join("hist.svg");
    purity_histogram(&before, &after, "top-5", &hist).unwrap();
    let svg = std::fs::read_to_string(&hist).unwrap();
    let counts: Vec<f64> = texts(&svg)
        .into_iter()
        .filter(|t| t.0 < 100.0) // the y axis's labels, left of the plot
        .filter_map(|t| t.2.parse::<f64>().ok())
        .collect();
    assert!(counts.len() >= 3, "{counts:?}");
    assert!(counts.iter().all(|c| c.fract() == 0.0), "{counts:?}");
    assert!(
        !numbers(&svg).iter().any(|t| t.contains(".0") && t.parse::<f64>().unwrap() >= 10.0),
        "a count like 1400.0"
    );

    // The combined plot: one SVG of both, and the PNG of the same size as before.
    let plot = PurityPlot { title: "orthogonal".into(), history: history(), before, after };
    plot.save(&dir.path().join("both.svg")).unwrap();
    let both = std::fs::read_to_string(dir.path().join("both.svg")).unwrap();
    assert!(
        both.contains("Average purity over training (orthogonal)")
            && both.contains("Purity of the prototypes (orthogonal)")
    );
    plot.save(&dir.path().join("both.png")).unwrap();
    let png = image::open(dir.path().join("both.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1000, 1208));
}
