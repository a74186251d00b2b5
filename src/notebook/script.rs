//! A Rhai session's values inline. `session.run(…)` returns a [`ScriptValue`],
//! which shows what it holds: an explanation, prototype grids, a purity plot or
//! a picture as `image/png`, a purity table as `text/html`, anything else as the
//! text `print` gives it; a run that ends in a statement shows nothing. Handles
//! taken out with `session.get` show their one-line description.
use super::Output;
use crate::render::{Canvas, PrototypeGrid, PrototypeGrids, PurityPlot, PurityTable};
use crate::script::{DisentanglerHandle, ExplanationHandle, ModelHandle, ScriptValue, Session};
use crate::study::Study;

impl ScriptValue {
    /// What the value shows: see the module's documentation.
    pub fn notebook_output(&self) -> Output {
        if self.is_unit() {
            return Output::default();
        }
        if let Some(e) = self.cast::<ExplanationHandle>() {
            return e.notebook_output();
        }
        if let Some(g) = self.cast::<PrototypeGrid>() {
            return g.notebook_output();
        }
        if let Some(g) = self.cast::<PrototypeGrids>() {
            return g.notebook_output();
        }
        if let Some(p) = self.cast::<PurityPlot>() {
            return p.notebook_output();
        }
        if let Some(t) = self.cast::<PurityTable>() {
            return t.notebook_output();
        }
        if let Some(c) = self.cast::<Canvas>() {
            return c.notebook_output();
        }
        Output::text(self.text.clone())
    }

    /// Shows the value under the notebook cell.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        self.notebook_output().emit()
    }
}

macro_rules! plain_display {
    ($($t:ty),*) => {$(
        impl $t {
            /// Its description as `text/plain`.
            pub fn notebook_output(&self) -> Output {
                Output::text(self.to_string())
            }

            /// Shows its description under the notebook cell.
            #[cfg(feature = "notebook")]
            pub fn evcxr_display(&self) {
                self.notebook_output().emit()
            }
        }
    )*};
}

plain_display!(Study, ModelHandle, DisentanglerHandle);

impl Session {
    /// `Session(N runs)`.
    #[cfg(feature = "notebook")]
    pub fn evcxr_display(&self) {
        Output::text(format!("Session({} runs)", self.runs())).emit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::png_of;
    use crate::render::figures::explanation_size;
    use crate::render::table::format_purity;
    use crate::script::{ExplanationHandle, Session};
    use crate::study::Study;

    /// The tiny demo through a session: every value a notebook shows, from real
    /// numbers (Lite0 at 64×64 on 3 Fashion-MNIST images per class).
    #[test]
    fn session_values_show_as_pictures_and_tables() {
        let mut s = Session::new();
        let bank = s
            .run(
                r#"
let base = load_model(#{ name: "efficientnet_lite0", resize: 64, crop: 64 });
let train = fashion_mnist("train", 3, base);
let val = fashion_mnist("test", 1, base);
let bank = fit_head(extract(base, train, #{ quiet: true }), 10);
bank"#,
            )
            .unwrap();
        assert_eq!(bank.notebook_output().text_of("text/plain"), Some("Bank(N = 30, C = 1280, maps 2×2)"));
        assert!(bank.notebook_output().get("image/png").is_none());
        assert!(s.run("let d = disentangler(\"orthogonal\", 1280);").unwrap().notebook_output().items.is_empty());

        // Purity table: the values formatted from the purities the session computed.
        let out = s
            .run(
                r#"let before = prototype_purities(bank, d, 2);
let after = prototype_purities(bank, d, 3);
purity_table(before, after, "top-2 prototypes")"#,
            )
            .unwrap()
            .notebook_output();
        let before: Vec<f64> = s
            .run("before.to_array()")
            .unwrap()
            .cast::<rhai::Array>()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect();
        assert_eq!(before.len(), 2 * 1280);
        let mean = before.iter().sum::<f64>() / before.len() as f64;
        let html = out.text_of("text/html").unwrap();
        assert!(html.contains(&format!("<td>mean</td><td>{}</td>", format_purity(mean))), "{mean}: {html}");
        assert!(out.text_of("text/plain").unwrap().contains(&format_purity(mean)));

        // Explanation: k rows of 1 + m tiles, in one PNG.
        let out = s
            .run("explain(d, bank, val.image(4), #{ num_prototypical_channels: 3, num_prototypes: 4 })")
            .unwrap()
            .notebook_output();
        assert_eq!(png_of(&out).dimensions(), explanation_size(3, 4));
        let e: ExplanationHandle = s.run("explain(d, bank, val.image(4), #{ k: 3, m: 4 })").unwrap().cast().unwrap();
        assert_eq!(out.text_of("text/plain").unwrap(), e.explanation.summary(Some(&e.explanation.name)));

        // Prototype grids of two channels: one picture, two rows.
        let out = s.run("prototype_grids(bank, d, [0, 5], 3, #{})").unwrap().notebook_output();
        let one = png_of(&s.run("prototype_grid(bank, d, 0, 3, #{})").unwrap().notebook_output());
        assert_eq!(png_of(&out).dimensions(), (one.width(), 2 * one.height() + 8));
        assert!(out.text_of("text/plain").unwrap().starts_with("channel 0: top 3 prototypes, before training"));

        // A picture of a data set image, and a purity plot.
        assert_eq!(png_of(&s.run("picture(val, 2)").unwrap().notebook_output()).dimensions(), (64, 64));
        let plot = s
            .run("purity_plot(#{ steps: [[2, 0.1]], epochs: [[2, 0.2]] }, before, after, \"orthogonal\")")
            .unwrap()
            .notebook_output();
        assert_eq!(png_of(&plot).dimensions(), (1000, 1208));

        // Rust values out of the session.
        let bank: Study = s.get("bank").unwrap();
        assert_eq!(bank.notebook_output().text_of("text/plain"), Some("Bank(N = 30, C = 1280, maps 2×2)"));
        assert_eq!(s.run("1 + 2").unwrap().notebook_output().text_of("text/plain"), Some("3"));
    }
}
