//! `epic evaluate RUN_DIR`: is the explaining network the network, and are its
//! explanations faithful? On the run's held-out images:
//! - accuracy of the original head A and of the modified head A·U⁻¹ on Ẑ, and
//!   their agreement (the paper's Table 1: it must be 100 %);
//! - deletion: remove the top-k explaining channels from the pooled rotated
//!   vector v and measure how often the prediction flips and how much its
//!   probability drops, against k random channels and against the top-k
//!   channels of the unrotated basis (A and avgpool(Z));
//! - prototype consistency: per channel, the share of its top-m prototypes that
//!   carry the channel's majority label, before (U = I) and after training;
//! - coverage: distinct training images among all channels' top-m prototypes.
//!
//! Everything after one backbone pass over the held-out images works on pooled
//! vectors: avgpool(U·Z) = U·avgpool(Z).
use super::explanation::rotated_head;
use super::Run;
use crate::features::{BatchSize, ExtractOptions};
use crate::study::Study;
use serde::Serialize;
use tch::{Kind, Tensor};

/// One row of the deletion test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deletion {
    /// Channels removed.
    pub k: i64,
    /// Which: `explained` (top-k of A′\[pred\] ⊙ ReLU(v)), `random`, or `unrotated`
    /// (top-k of A\[pred\] ⊙ ReLU(avgpool(Z)), removed from avgpool(Z)).
    pub channels: String,
    /// Share of images whose prediction changed.
    pub flip_rate: f64,
    /// Mean drop of the predicted class's probability.
    pub mean_probability_drop: f64,
}

/// An image on which the two heads disagree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    /// Index in the held-out set.
    pub image: usize,
    /// The original head's class, and the modified head's.
    pub classes: [i64; 2],
    /// The original head's margin between the two.
    pub margin: f64,
}

/// `epic evaluate`'s numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Held-out images evaluated (those that decoded).
    pub images: usize,
    /// Accuracy of the original network.
    pub accuracy_original: f64,
    /// Accuracy of the network with the modified head A·U⁻¹ on Ẑ = U·Z.
    pub accuracy_modified: f64,
    /// Share of images on which both predict the same class.
    pub agreement: f64,
    /// Where they do not.
    pub disagreements: Vec<Disagreement>,
    /// The deletion test, per k and kind of channels.
    pub deletion: Vec<Deletion>,
    /// Prototypes per channel in consistency and coverage.
    pub m: i64,
    /// Mean over channels of the majority-label share of the top-m prototypes, with U = I.
    pub consistency_before: f64,
    /// The same under the trained U.
    pub consistency_after: f64,
    /// Distinct training images among all channels' top-m prototypes, U = I.
    pub coverage_before: usize,
    /// The same under the trained U.
    pub coverage_after: usize,
}

/// The deletion test's k.
pub const DELETION_K: [i64; 4] = [1, 3, 5, 10];

fn argmax(logits: &Tensor) -> crate::Result<Tensor> {
    Ok(logits.f_argmax(1, false)?)
}

/// Flip rate and mean probability drop of the predictions `pred` when the
/// channels `removed` (`[N,k]`) of `v` `[N,C]` are zeroed, under head (w, b).
fn delete(v: &Tensor, removed: &Tensor, w: &Tensor, b: &Tensor, pred: &Tensor) -> crate::Result<(f64, f64)> {
    let before = v.f_matmul(&w.f_tr()?)?.f_add(b)?.f_softmax(1, Kind::Double)?;
    let kept = v.f_scatter_value(1, removed, 0.0)?;
    let logits = kept.f_matmul(&w.f_tr()?)?.f_add(b)?;
    let after = logits.f_softmax(1, Kind::Double)?;
    let p = pred.f_unsqueeze(1)?;
    let drop = before.f_gather(1, &p, false)?.f_sub(&after.f_gather(1, &p, false)?)?;
    let flips = argmax(&logits)?.f_ne_tensor(pred)?.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?;
    Ok((flips.f_double_value(&[])?, drop.f_mean(Kind::Double)?.f_double_value(&[])?))
}

/// Majority-label share of each channel's prototypes `protos` `[C,m]`, averaged,
/// and the number of distinct images among them.
fn consistency(protos: &Tensor, labels: &Tensor) -> crate::Result<(f64, usize)> {
    let (c, m) = (protos.size()[0], protos.size()[1]);
    let l = labels.f_index_select(0, &protos.f_reshape([-1])?)?.f_reshape([c, m])?;
    let rows = Vec::<Vec<i64>>::try_from(&l)?;
    let mut total = 0.0;
    for row in &rows {
        let mut counts = std::collections::HashMap::new();
        for &x in row {
            *counts.entry(x).or_insert(0usize) += 1;
        }
        total += *counts.values().max().unwrap_or(&0) as f64 / m.max(1) as f64;
    }
    let distinct: std::collections::HashSet<i64> = Vec::<i64>::try_from(protos.f_reshape([-1])?)?.into_iter().collect();
    Ok((total / c.max(1) as f64, distinct.len()))
}

impl Run {
    /// Evaluates the run on its held-out set (see the module docs), `m`
    /// prototypes per channel, random channels drawn with `seed`.
    pub fn evaluate(&self, m: i64, seed: i64, quiet: bool) -> crate::Result<Evaluation> {
        let val = self.val.clone().ok_or_else(|| {
            crate::Error::invalid(
                self.dir.display().to_string(),
                "the run recorded no held-out data set to evaluate on",
            )
        })?;
        let options = ExtractOptions {
            batch_size: BatchSize::Fixed(self.manifest.batch_size),
            chunk: self.manifest.chunk,
            cache: self.manifest.cache.clone(),
            memo_mib: 0,
            quiet,
            ..ExtractOptions::default()
        };
        let held_out = Study::extract(self.study.network_rc(), val, &options)?;
        let bank = held_out.bank();
        let device = tch::Device::Cpu;
        let (u, w_mod) = rotated_head(&self.study, &self.disentangler, device)?;
        let net = self.study.network();
        let to = |t: &Tensor| -> crate::Result<Tensor> { Ok(t.f_to_device(device)?.f_to_kind(Kind::Double)?) };
        let (w, b, w_mod, u) = (to(net.head_weight())?, to(net.head_bias())?, to(&w_mod)?, to(&u)?);
        let (h, wd) = bank.map_size;
        let valid = bank.valid.f_nonzero()?.f_reshape([-1])?;
        let pooled = to(&bank.sums()?)?.f_div_scalar((h * wd).max(1) as f64)?.f_index_select(0, &valid)?;
        let labels = bank.labels.f_index_select(0, &valid)?.f_to_device(device)?;
        let n = pooled.size()[0];
        let v = pooled.f_matmul(&u.f_tr()?)?;
        let original = pooled.f_matmul(&w.f_tr()?)?.f_add(&b)?;
        let modified = v.f_matmul(&w_mod.f_tr()?)?.f_add(&b)?;
        let (p0, p1) = (argmax(&original)?, argmax(&modified)?);
        let acc = |p: &Tensor| -> crate::Result<f64> {
            Ok(p.f_eq_tensor(&labels)?.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?.f_double_value(&[])?)
        };
        let same = p0.f_eq_tensor(&p1)?;
        let mut disagreements = Vec::new();
        let valid_idx = Vec::<i64>::try_from(&valid)?;
        for i in Vec::<i64>::try_from(same.f_logical_not()?.f_nonzero()?.f_reshape([-1])?)? {
            let (a, c) = (p0.f_int64_value(&[i])?, p1.f_int64_value(&[i])?);
            let margin = original.f_double_value(&[i, a])? - original.f_double_value(&[i, c])?;
            disagreements.push(Disagreement { image: valid_idx[i as usize] as usize, classes: [a, c], margin });
        }

        let channels = v.size()[1];
        let explained = w_mod.f_index_select(0, &p1)?.f_mul(&v.f_relu()?)?;
        let unrotated = w.f_index_select(0, &p0)?.f_mul(&pooled.f_relu()?)?;
        tch::manual_seed(seed);
        let noise = Tensor::f_rand([n, channels], (Kind::Float, device))?;
        let mut deletion = Vec::new();
        for k in DELETION_K.into_iter().filter(|&k| k <= channels) {
            let top = explained.f_topk(k, 1, true, true)?.1;
            let (flip, drop) = delete(&v, &top, &w_mod, &b, &p1)?;
            deletion.push(Deletion { k, channels: "explained".into(), flip_rate: flip, mean_probability_drop: drop });
            let random = noise.f_topk(k, 1, true, false)?.1;
            let (flip, drop) = delete(&v, &random, &w_mod, &b, &p1)?;
            deletion.push(Deletion { k, channels: "random".into(), flip_rate: flip, mean_probability_drop: drop });
            let top0 = unrotated.f_topk(k, 1, true, true)?.1;
            let (flip, drop) = delete(&pooled, &top0, &w, &b, &p0)?;
            deletion.push(Deletion { k, channels: "unrotated".into(), flip_rate: flip, mean_probability_drop: drop });
        }

        let train = self.study.bank();
        let m = m.clamp(1, train.len() as i64);
        let u_train = self.disentangler.matrix()?;
        let (consistency_before, coverage_before) = consistency(&train.top_prototypes(None, m)?, &train.labels)?;
        let (consistency_after, coverage_after) =
            consistency(&train.top_prototypes(Some(&u_train), m)?, &train.labels)?;
        Ok(Evaluation {
            images: n as usize,
            accuracy_original: acc(&p0)?,
            accuracy_modified: acc(&p1)?,
            agreement: same.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?.f_double_value(&[])?,
            disagreements,
            deletion,
            m,
            consistency_before,
            consistency_after,
            coverage_before,
            coverage_after,
        })
    }
}

impl Evaluation {
    /// Writes `run_dir/evaluation.json` (atomically), which `epic report` shows.
    pub fn save(&self, run_dir: &std::path::Path) -> crate::Result<std::path::PathBuf> {
        let path = run_dir.join("evaluation.json");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| crate::Error::invalid("evaluation.json", e.to_string()))?;
        crate::io::atomic::write_bytes_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// The small table `epic evaluate` prints.
    pub fn table(&self) -> String {
        let pct = |x: f64| format!("{:.1} %", 100.0 * x);
        let mut rows = vec![
            vec!["held-out images".to_string(), self.images.to_string()],
            vec!["accuracy, original head A".into(), pct(self.accuracy_original)],
            vec!["accuracy, modified head A·U⁻¹ on U·Z".into(), pct(self.accuracy_modified)],
            vec!["prediction agreement".into(), pct(self.agreement)],
            vec![
                format!("prototype consistency (top-{}), U = I → trained", self.m),
                format!("{} → {}", pct(self.consistency_before), pct(self.consistency_after)),
            ],
            vec![
                format!("coverage (distinct top-{} images), U = I → trained", self.m),
                format!("{} → {}", self.coverage_before, self.coverage_after),
            ],
        ];
        for d in &self.deletion {
            rows.push(vec![
                format!("remove top {} {} channel(s)", d.k, d.channels),
                format!("flips {}, p drops {:.3}", pct(d.flip_rate), d.mean_probability_drop),
            ]);
        }
        crate::report::table(&["quantity".to_string(), "value".to_string()], &rows)
    }
}
