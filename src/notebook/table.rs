//! Purity tables inline: `text/html`, with the aligned text table as `text/plain`.
use super::Output;
use crate::render::PurityTable;

impl PurityTable {
    /// The table as `text/html` and as aligned text.
    pub fn notebook_output(&self) -> Output {
        Output::html(self.html(), self.text())
    }

    /// Shows the table under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

#[cfg(test)]
mod tests {
    use crate::render::table::format_purity;
    use crate::render::PurityTable;

    #[test]
    fn the_table_shows_the_statistics_of_the_purities() {
        let before = vec![0.125, 0.5, 0.25, 0.375, 0.0625];
        let after = vec![0.75, 0.5, 0.875, 0.625, 1.0];
        let t = PurityTable::new("top-1 prototypes of 5 channels", before.clone(), after.clone());
        let out = t.notebook_output();
        let html = out.text_of("text/html").unwrap();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let row = |stat: &str, b: f64, a: f64| {
            format!(
                "<tr data-stat=\"{stat}\"><td>{stat}</td><td>{}</td><td>{}</td><td>{:+.6}</td></tr>",
                format_purity(b),
                format_purity(a),
                a - b
            )
        };
        assert!(html.contains(&row("mean", mean(&before), mean(&after))), "{html}");
        assert!(html.contains(&row("median", 0.25, 0.75)), "{html}");
        assert!(html.contains(&row("min", 0.0625, 0.5)), "{html}");
        assert!(html.contains(&row("max", 0.5, 1.0)), "{html}");
        // numpy's linear interpolation: 10th percentile of the sorted values at position 0.4.
        assert!(html.contains(&row("10th percentile", 0.0625 + 0.4 * 0.0625, 0.5 + 0.4 * 0.125)), "{html}");
        assert!(html.contains("0.262500") && html.contains("0.750000"), "{html}");
        assert!(html.contains("n = 5 before, 5 after"));
        let plain = out.text_of("text/plain").unwrap();
        assert!(plain.contains("| mean ") && plain.contains("0.262500") && plain.contains("+0.487500"), "{plain}");
        assert_eq!(t.rows()[0].before, mean(&before));
    }
}
