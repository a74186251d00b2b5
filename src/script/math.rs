//! Script bindings of the EPIC math: rotation, activations, prototypes, purity,
//! the modified head and the channels that explain a prediction.
use super::rt;
use super::tensor::ScriptTensor;
use rhai::plugin::*;
use rhai::Array;
use rhai::{FLOAT, INT};

/// The script functions for EPIC's tensor math (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;
    use crate::{disentangle, explain, features, prototypes};

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;

    /// Orthogonal U = exp(A − Aᵀ) from the raw matrix A `[C,C]` → `[C,C]`.
    ///
    /// ```rhai
    /// let u = orthogonal_matrix(v.a_raw);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn orthogonal_matrix(a_raw: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(disentangle::orthogonal_matrix(&a_raw.0).map(ScriptTensor))
    }

    /// Invertible U = exp(A) from the raw matrix A `[C,C]` → `[C,C]`.
    ///
    /// ```rhai
    /// let u = invertible_matrix(v.a_raw);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn invertible_matrix(a_raw: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(disentangle::invertible_matrix(&a_raw.0).map(ScriptTensor))
    }

    /// Ẑ = U·Z at every pixel: features `[B,C,H,W]`, u `[C,C]` → `[B,C,H,W]`.
    ///
    /// ```rhai
    /// let rotated = rotate(v.features, orthogonal_matrix(v.a_raw));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn rotate(features: Tensor, u: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(features::rotate(&features.0, &u.0).map(ScriptTensor))
    }

    /// `x` rounded to `digits` decimals, for printing: `round_to(0.999459542, 3)` is 0.999.
    pub fn round_to(x: FLOAT, digits: INT) -> FLOAT {
        let f = 10f64.powi(digits.clamp(0, 15) as i32);
        (x * f).round() / f
    }

    /// `x` in scientific notation with two significant digits, for printing
    /// small quantities: `sci(0.0000019073486328125)` is `"1.9e-6"`.
    pub fn sci(x: FLOAT) -> String {
        format!("{x:.1e}")
    }

    /// Spatial sums under U from sums without it: `sums` `[N,C]` → sums·Uᵀ `[N,C]`,
    /// what channel_activation(rotate(z, u)) gives, without the maps (Σ_hw U z = U Σ_hw z).
    ///
    /// ```rhai
    /// let ranked = top_prototypes(rotate_sums(bank.sums(), d.matrix()), 5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn rotate_sums(sums: Tensor, u: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(features::rotate_sums(&sums.0, &u.0).map(ScriptTensor))
    }

    /// Spatial sum per channel, the activation that ranks prototypes:
    /// features `[B,C,H,W]` → `[B,C]`.
    ///
    /// ```rhai
    /// let act = channel_activation(rotated);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn channel_activation(features: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(features::channel_activation(&features.0).map(ScriptTensor))
    }

    /// Exact top-m images per channel: activation `[N,C]` → int64 `[C,m]` image indices,
    /// largest first, ties to the lower index. Needs 1 ≤ m ≤ N.
    ///
    /// ```rhai
    /// let protos = top_prototypes(channel_activation(rotated), 3);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn top_prototypes(activation: Tensor, m: INT) -> Result<Tensor, Box<EvalAltResult>> {
        rt(prototypes::top_prototypes(&activation.0, m).map(ScriptTensor))
    }

    /// Argmax purity of each image on its channel: features `[B,C,H,W]`, channels `[B]`
    /// int → `[B]` in `[-1, 1]`: p_k/‖p‖ at the pixel where channel k peaks.
    ///
    /// ```rhai
    /// let p = purity_argmax(rotated, v.channels);
    /// print(p.mean());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn purity_argmax(features: Tensor, channels: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(prototypes::purity_argmax(&features.0, &channels.0).map(ScriptTensor))
    }

    /// Mean argmax purity of prototypes: features `[N,C,H,W]`, prototypes `[C,m]` int
    /// (image indices, as `top_prototypes` returns) → float.
    ///
    /// ```rhai
    /// let before = mean_purity(v.features, top_prototypes(channel_activation(v.features), 3));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn mean_purity(features: Tensor, prototypes: Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(prototypes::mean_purity(&features.0, &prototypes.0))
    }

    /// Logits of the avgpool + linear head: features `[B,C,H,W]`, weight `[K,C]`, bias `[K]` → `[B,K]`.
    ///
    /// ```rhai
    /// let l = logits(v.features, v.fc_weight, v.fc_bias);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn logits(features: Tensor, weight: Tensor, bias: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(explain::logits(&features.0, &weight.0, &bias.0).map(ScriptTensor))
    }

    /// The modified head's weight A·U⁻¹: weight `[K,C]`, u `[C,C]` → `[K,C]`; with it,
    /// rotated features give the original logits.
    ///
    /// ```rhai
    /// let w2 = modified_head(v.fc_weight, u);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn modified_head(weight: Tensor, u: Tensor) -> Result<Tensor, Box<EvalAltResult>> {
        rt(explain::modified_head(&weight.0, &u.0).map(ScriptTensor))
    }

    /// Largest |logit change| when features are rotated by u and the head becomes
    /// A·U⁻¹: features `[B,C,H,W]`, weight `[K,C]`, bias `[K]`, u `[C,C]` → float (≈ 0).
    ///
    /// ```rhai
    /// let change = max_logit_change(v.features, v.fc_weight, v.fc_bias, u);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn max_logit_change(
        features: Tensor,
        weight: Tensor,
        bias: Tensor,
        u: Tensor,
    ) -> Result<FLOAT, Box<EvalAltResult>> {
        rt(explain::max_logit_change(&features.0, &weight.0, &bias.0, &u.0))
    }

    /// Top-k channels explaining each image's predicted class:
    /// rotated `[B,C,H,W]`, weight_modified `[K,C]`, bias `[K]` → int64 `[B,k]`, ranked by
    /// A′`[pred,c]`·ReLU(avgpool(Ẑ))_c (libtorch's topk, as the reference).
    ///
    /// ```rhai
    /// let top = top_channels(rotated, modified_head(v.fc_weight, u), v.fc_bias, 4);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn top_channels(
        rotated: Tensor,
        weight_modified: Tensor,
        bias: Tensor,
        k: INT,
    ) -> Result<Tensor, Box<EvalAltResult>> {
        rt(explain::top_channels(&rotated.0, &weight_modified.0, &bias.0, k, None).map(|t| ScriptTensor(t.channels)))
    }

    /// Top-k channels explaining the given class of each image: like
    /// `top_channels(rotated, weight_modified, bias, k)`, with classes `[B]` int.
    ///
    /// ```rhai
    /// let top = top_channels(rotated, w2, v.fc_bias, 4, tensor(`[3, 3, 3]`));
    /// ```
    #[rhai_fn(name = "top_channels", return_raw)]
    pub fn top_channels_for(
        rotated: Tensor,
        weight_modified: Tensor,
        bias: Tensor,
        k: INT,
        classes: Tensor,
    ) -> Result<Tensor, Box<EvalAltResult>> {
        rt(explain::top_channels(&rotated.0, &weight_modified.0, &bias.0, k, Some(&classes.0))
            .map(|t| ScriptTensor(t.channels)))
    }

    /// Formats a table: header (array of strings) and rows (arrays of values) →
    /// aligned Markdown text.
    ///
    /// ```rhai
    /// print(table(["quantity", "max |Δ|"], [["rotated", 3e-7]]));
    /// ```
    pub fn table(header: Array, rows: Array) -> String {
        let cell = |d: &Dynamic| match d.as_float() {
            Ok(f) if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e6) => format!("{f:.3e}"),
            Ok(f) => format!("{f:.6}"),
            Err(_) => d.to_string(),
        };
        let header: Vec<String> = header.iter().map(cell).collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| match r.read_lock::<Array>() {
                Some(a) => a.iter().map(cell).collect(),
                None => vec![cell(r)],
            })
            .collect();
        crate::report::table(&header, &rows)
    }
}
