//! Purity plots inline: a training history as the purity curve, a
//! [`PurityPlot`] as the curve above the before/after histogram (one picture).
use super::Output;
use crate::disentangle::History;
use crate::render::PurityPlot;

impl History {
    /// Mean purity at each schedule step and after each epoch, as text.
    pub fn summary(&self) -> String {
        let f = |v: &[(usize, f64)]| v.iter().map(|(m, p)| format!("m={m}: {p:.4}")).collect::<Vec<_>>().join(", ");
        format!("History: steps [{}]; epochs [{}]", f(&self.steps), f(&self.epochs))
    }

    /// The purity curve (1000×600) as `image/png`, the numbers as text.
    pub fn notebook_output(&self) -> Output {
        Output::drawn(crate::render::purity_curve_canvas(self, "Average purity over training"), self.summary())
    }

    /// Shows the purity curve under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

impl PurityPlot {
    /// The curve above the histogram (1000×1208) as `image/png`, the means as text.
    pub fn notebook_output(&self) -> Output {
        Output::drawn(self.canvas(), self.summary())
    }

    /// Shows the plots under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::png_of;
    use crate::disentangle::History;
    use crate::render::PurityPlot;

    fn history() -> History {
        History { steps: vec![(3, 0.21), (2, 0.34)], epochs: vec![(3, 0.27), (2, 0.41)] }
    }

    #[test]
    fn a_history_shows_its_curve() {
        let out = history().notebook_output();
        assert_eq!(png_of(&out).dimensions(), (1000, 600));
        assert_eq!(
            out.text_of("text/plain"),
            Some("History: steps [m=3: 0.2100, m=2: 0.3400]; epochs [m=3: 0.2700, m=2: 0.4100]")
        );
    }

    #[test]
    fn a_purity_plot_is_the_curve_above_the_histogram() {
        let before = vec![0.1, 0.2, 0.3, 0.2];
        let after = vec![0.5, 0.25, 0.75, 0.5];
        let plot = PurityPlot { title: "orthogonal".into(), history: history(), before, after };
        let out = plot.notebook_output();
        let img = png_of(&out);
        assert_eq!(img.dimensions(), (1000, 1208));
        // The 8 px gap between the plots is white; both halves have ink.
        assert!((0..1000).all(|x| img.get_pixel(x, 603).0 == [255, 255, 255]));
        let ink = |y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (0..1000).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
                .count()
        };
        assert!(ink(0, 600) > 5000 && ink(608, 1208) > 5000);
        let plain = out.text_of("text/plain").unwrap();
        assert_eq!(plain, "purity (orthogonal): before 0.2000; at each step m=3: 0.2100, m=2: 0.3400; after 0.5000");
    }
}
