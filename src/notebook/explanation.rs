//! Explanations inline. An [`Explanation`] alone holds numbers, so it shows as
//! an HTML table (channel, contribution, peak cell, prototypes); a script's
//! [`ExplanationHandle`], which also holds the input and the bank's images, shows
//! the explanation figure as `image/png`.
use super::Output;
use crate::explain::Explanation;
use crate::script::ExplanationHandle;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Explanation {
    /// One line: class, probability, channels and contributions.
    pub fn summary(&self, class_name: Option<&str>) -> String {
        let scores: Vec<String> = self.scores.iter().map(|s| format!("{s:.3}")).collect();
        format!(
            "Explanation: {}class {} (p = {:.3}), channels {:?}, contributions [{}], max |logit change| {:.1e}",
            class_name.map(|n| format!("{n}, ")).unwrap_or_default(),
            self.class,
            self.prob,
            self.channels,
            scores.join(", "),
            self.max_logit_change
        )
    }

    /// An HTML table: one row per explaining channel with its contribution, the
    /// feature-map cell where it peaks in the input and its prototypes (indices
    /// into the bank's training set).
    pub fn html(&self) -> String {
        let mut s = format!(
            "<table class=\"epic-explanation\">\n<caption>class {} (p = {:.3}), max |logit change| {:.1e}, feature map {}×{}</caption>\n",
            self.class, self.prob, self.max_logit_change, self.grid.0, self.grid.1
        );
        s += "<thead><tr><th>channel</th><th>contribution</th><th>peak cell</th><th>prototypes</th></tr></thead>\n<tbody>\n";
        for (r, c) in self.channels.iter().enumerate() {
            let cell = self.cells.get(r).map(|(y, x)| format!("({y}, {x})")).unwrap_or_default();
            let protos: Vec<String> =
                self.prototypes.get(r).map(|p| p.iter().map(|i| format!("#{i}")).collect()).unwrap_or_default();
            s += &format!(
                "<tr><td>{c}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>\n",
                self.scores.get(r).copied().unwrap_or(f64::NAN),
                escape(&cell),
                protos.join(" ")
            );
        }
        s + "</tbody>\n</table>"
    }

    /// The table as `text/html`, the summary as `text/plain`.
    pub fn notebook_output(&self) -> Output {
        Output::html(self.html(), self.summary(None))
    }

    /// Shows the explanation's numbers under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

impl ExplanationHandle {
    /// The explanation figure (k rows: the input and the channel's prototypes,
    /// each boxed where the channel peaks) as `image/png`, the summary as text.
    pub fn notebook_output(&self) -> Output {
        Output::drawn(self.figure(), self.explanation.summary(Some(&self.explanation.name)))
    }

    /// Shows the explanation figure under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

#[cfg(test)]
mod tests {
    use crate::explain::Explanation;

    #[test]
    fn an_explanation_shows_its_channels_in_a_table() {
        let e = Explanation {
            class: 7,
            name: "class 7".into(),
            prob: 0.8125,
            channels: vec![912, 33],
            scores: vec![1.25, 0.0625],
            grid: (2, 2),
            cells: vec![(0, 1), (1, 1)],
            prototypes: vec![vec![4, 17, 2], vec![9, 0, 28]],
            prototype_cells: vec![vec![(0, 0); 3]; 2],
            max_logit_change: 2.5e-6,
        };
        let out = e.notebook_output();
        let html = out.text_of("text/html").unwrap();
        assert!(html.contains("<tr><td>912</td><td>1.2500</td><td>(0, 1)</td><td>#4 #17 #2</td></tr>"), "{html}");
        assert!(html.contains("<tr><td>33</td><td>0.0625</td><td>(1, 1)</td><td>#9 #0 #28</td></tr>"), "{html}");
        assert!(html.contains("class 7 (p = 0.812)") || html.contains("class 7 (p = 0.813)"), "{html}");
        let plain = out.text_of("text/plain").unwrap();
        assert!(plain.contains("channels [912, 33]") && plain.contains("contributions [1.250, 0.062]"), "{plain}");
        assert!(out.get("image/png").is_none());
    }
}
