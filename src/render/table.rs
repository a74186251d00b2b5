//! Purity before and after training as a table: a few statistics of the
//! per-prototype purities, as HTML (notebooks) and as aligned text (terminals).

/// Per-prototype purities before and after training (e.g. of every channel's
/// top-m prototypes, as `prototype_purities` gives them).
#[derive(Debug, Clone, PartialEq)]
pub struct PurityTable {
    /// What the purities are of, e.g. "top-5 prototypes of 1280 channels".
    pub caption: String,
    /// Per-prototype purities before training.
    pub before: Vec<f64>,
    /// Per-prototype purities after training.
    pub after: Vec<f64>,
}

/// One row: a statistic, its value before and after training.
#[derive(Debug, Clone, PartialEq)]
pub struct PurityRow {
    /// The name given.
    pub name: &'static str,
    /// Per-prototype purities before training.
    pub before: f64,
    /// Per-prototype purities after training.
    pub after: f64,
}

/// Mean of the finite values (NaN when there are none).
fn mean(xs: &[f64]) -> f64 {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The q-quantile (0 ≤ q ≤ 1) of the finite values, linearly interpolated as
/// numpy's default does (NaN when there are none).
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// A purity, as tables show it: 6 decimals.
pub fn format_purity(x: f64) -> String {
    format!("{x:.6}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl PurityTable {
    /// The table of per-prototype purities `before` and `after` training, under `caption`.
    pub fn new(caption: impl Into<String>, before: Vec<f64>, after: Vec<f64>) -> Self {
        PurityTable { caption: caption.into(), before, after }
    }

    /// From purity tensors (any shape, as `prototype_purities` returns them).
    /// Not generic, so that it is compiled in epic (notebook cells cannot call
    /// libtorch's C glue themselves: see the `epic_nb` crate).
    pub fn from_tensors(caption: &str, before: &tch::Tensor, after: &tch::Tensor) -> crate::Result<Self> {
        let values = |t: &tch::Tensor| -> crate::Result<Vec<f64>> {
            Ok(Vec::<f64>::try_from(t.f_to_kind(tch::Kind::Double)?.f_reshape([-1])?)?)
        };
        Ok(PurityTable::new(caption, values(before)?, values(after)?))
    }

    /// Mean (the paper's number), median, 10th and 90th percentiles, min, max.
    pub fn rows(&self) -> Vec<PurityRow> {
        let row = |name, f: &dyn Fn(&[f64]) -> f64| PurityRow { name, before: f(&self.before), after: f(&self.after) };
        vec![
            row("mean", &mean),
            row("median", &|x| quantile(x, 0.5)),
            row("10th percentile", &|x| quantile(x, 0.1)),
            row("90th percentile", &|x| quantile(x, 0.9)),
            row("min", &|x| quantile(x, 0.0)),
            row("max", &|x| quantile(x, 1.0)),
        ]
    }

    /// An HTML table: one row per statistic, columns before, after and change;
    /// each row's `data-stat` names its statistic.
    pub fn html(&self) -> String {
        let mut s = String::from("<table class=\"epic-purity\">\n");
        s += &format!(
            "<caption>Argmax purity of the {} (n = {} before, {} after)</caption>\n",
            escape(&self.caption),
            self.before.len(),
            self.after.len()
        );
        s += "<thead><tr><th>statistic</th><th>before training</th><th>after training</th><th>change</th></tr></thead>\n<tbody>\n";
        for r in self.rows() {
            s += &format!(
                "<tr data-stat=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{:+.6}</td></tr>\n",
                r.name,
                r.name,
                format_purity(r.before),
                format_purity(r.after),
                r.after - r.before
            );
        }
        s += "</tbody>\n</table>";
        s
    }

    /// The same table as aligned text.
    pub fn text(&self) -> String {
        let header: Vec<String> =
            ["statistic", "before training", "after training", "change"].map(String::from).to_vec();
        let rows: Vec<Vec<String>> = self
            .rows()
            .into_iter()
            .map(|r| {
                vec![
                    r.name.to_string(),
                    format_purity(r.before),
                    format_purity(r.after),
                    format!("{:+.6}", r.after - r.before),
                ]
            })
            .collect();
        format!(
            "Argmax purity of the {} (n = {} before, {} after)\n{}",
            self.caption,
            self.before.len(),
            self.after.len(),
            crate::report::table(&header, &rows)
        )
    }
}
