//! `epic explain RUN_DIR IMAGE…` in the library: explain any images with a
//! finished run, one figure per image plus `explanations.json`; and
//! `epic explain RUN_DIR --class C`, a class view.
use crate::data::transform;
use crate::explain::{ExplainOptions, Run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What to explain about each image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainRequest {
    /// 1: the prediction; 2: why the top class and not the second (a contrast);
    /// K > 2: the top-K classes' own explanations side by side.
    pub classes: i64,
    /// Channels per class (or per side of a contrast).
    pub channels: i64,
    /// Prototypes per channel.
    pub prototypes: i64,
    /// Draw images in gray.
    pub gray: bool,
}

impl Default for ExplainRequest {
    fn default() -> Self {
        ExplainRequest { classes: 1, channels: 4, prototypes: 5, gray: false }
    }
}

/// A number rounded for people and JSON alike (6 significant digits).
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 5 - x.abs().log10().floor() as i32;
    let f = 10f64.powi(digits.clamp(-300, 300));
    (x * f).round() / f
}

fn prototype_entries(run: &Run, prototypes: &[Vec<usize>]) -> Value {
    let train = run.study.dataset();
    let names = train.class_names();
    Value::Array(
        prototypes
            .iter()
            .map(|row| {
                Value::Array(
                    row.iter()
                        .map(|&i| {
                            json!({
                                "index": i,
                                "source": train.describe(i),
                                "label": names.get(train.label(i) as usize).cloned().unwrap_or_default(),
                            })
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Explains `images` (files) with `run` as `request` says, writing
/// `out/<stem>.png` per image and `out/explanations.json`; returns the JSON.
pub fn explain_images(run: &Run, images: &[PathBuf], request: &ExplainRequest, out: &Path) -> crate::Result<Value> {
    let study = &run.study;
    let d = &run.disentangler;
    let net = study.network();
    let mut entries = Vec::new();
    let mut used = std::collections::HashSet::new();
    for path in images {
        let img = crate::data::image::load_rgb(path).map_err(crate::Error::Data)?;
        let x =
            transform::preprocess(&img, &net.preprocess()).map_err(crate::Error::Data)?.f_to_device(net.device())?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
        let mut name = stem.clone();
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = format!("{stem}-{n}");
        }
        let figure_path = out.join(format!("{name}.png"));
        let options = ExplainOptions { channels: request.channels, prototypes: request.prototypes, class: None };
        let top = study.explain(d, &x, &options)?;
        let mut entry = json!({
            "image": path.display().to_string(),
            "figure": figure_path.display().to_string(),
            "predicted": { "class": top.class, "name": top.name, "probability": round(top.prob) },
            "max_logit_change": top.max_logit_change,
        });
        let figure = match request.classes {
            k if k <= 1 => {
                entry["channels"] = json!(top.channels);
                entry["scores"] = json!(top.scores.iter().map(|&s| round(s)).collect::<Vec<_>>());
                entry["prototypes"] = prototype_entries(run, &top.prototypes);
                study.explanation_figure(&top, &x, request.gray)?
            }
            2 => {
                let c = study.contrast(d, &x, None, request.channels, request.prototypes)?;
                entry["contrast"] = json!({
                    "margin": c.margin,
                    "shown": c.shown(),
                    "other_channels": c.other_channels,
                    "bias": c.bias,
                    "sides": c.sides.iter().enumerate().map(|(s, side)| json!({
                        "class": side.class,
                        "name": side.name,
                        "probability": round(c.probs[s]),
                        "logit": c.logits[s],
                        "channels": side.channels,
                        "terms": side.terms,
                        "prototypes": prototype_entries(run, &side.prototypes),
                    })).collect::<Vec<_>>(),
                });
                study.contrast_figure(d, &c, &x, request.gray)?
            }
            k => {
                let logits = net.logits(&x.f_unsqueeze(0)?)?;
                let classes = Vec::<i64>::try_from(logits.f_get(0)?.f_topk(k, 0, true, true)?.1)?;
                let mut figures = Vec::new();
                let mut per_class = Vec::new();
                for &class in &classes {
                    let e = study.explain(d, &x, &ExplainOptions { class: Some(class), ..options })?;
                    per_class.push(json!({
                        "class": e.class, "name": e.name, "probability": round(e.prob),
                        "channels": e.channels,
                        "scores": e.scores.iter().map(|&s| round(s)).collect::<Vec<_>>(),
                        "prototypes": prototype_entries(run, &e.prototypes),
                    }));
                    figures.push(study.explanation_figure(&e, &x, request.gray)?);
                }
                entry["classes"] = Value::Array(per_class);
                study.side_by_side(&format!("{}: the top {k} classes", path.display()), &figures)?
            }
        };
        figure.save(&figure_path)?;
        entries.push(entry);
    }
    let doc = json!({ "run": run.dir.display().to_string(), "classes": request.classes, "images": entries });
    let text =
        serde_json::to_string_pretty(&doc).map_err(|e| crate::Error::invalid("explanations.json", e.to_string()))?;
    crate::io::atomic::write_bytes_atomic(&out.join("explanations.json"), text.as_bytes())?;
    Ok(doc)
}

/// Resolves a class given by index or by name (case-insensitive) against `names`.
pub fn resolve_class(spec: &str, names: &[String]) -> crate::Result<i64> {
    if let Ok(i) = spec.parse::<i64>() {
        if (0..names.len() as i64).contains(&i) || names.is_empty() {
            return Ok(i);
        }
    }
    names.iter().position(|n| n.eq_ignore_ascii_case(spec)).map(|i| i as i64).ok_or_else(|| {
        let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
        crate::Error::invalid(
            format!("class {spec:?}"),
            format!(
                "not an index 0..{} nor a class name; the names are {}{}",
                names.len(),
                shown.join(", "),
                if names.len() > 12 { ", …" } else { "" }
            ),
        )
    })
}

/// The class view of `class` with `run`, written as `out/class_<class>.png` and
/// `out/class_<class>.json`; returns the JSON.
pub fn class_view_files(
    run: &Run,
    class: i64,
    request: &ExplainRequest,
    negative: bool,
    out: &Path,
) -> crate::Result<Value> {
    let v = run.study.class_view(&run.disentangler, class, request.channels, request.prototypes, negative)?;
    let figure = out.join(format!("class_{class}.png"));
    run.study.class_view_figure(&run.disentangler, &v, request.gray)?.save(&figure)?;
    let doc = json!({
        "class": v.class, "name": v.name, "images": v.images,
        "channels": v.channels,
        "contributions": v.contributions.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "shares": v.shares.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        "prototypes": prototype_entries(run, &v.prototypes),
        "negative_prototypes": v.negative.as_ref().map(|n| prototype_entries(run, n)),
        "figure": figure.display().to_string(),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| crate::Error::invalid("class view", e.to_string()))?;
    crate::io::atomic::write_bytes_atomic(&out.join(format!("class_{class}.json")), text.as_bytes())?;
    Ok(doc)
}
