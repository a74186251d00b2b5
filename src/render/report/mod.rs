//! `epic report RUN_DIR`: a static site of a finished run at
//! `RUN_DIR/report/index.html`, browsable without a server or a network.
//!
//! - `index.html`: the model, the data, the resolved config, purity before and
//!   after, the run's plots, `epic evaluate`'s numbers when the run has them, and
//!   the channels that gained most;
//! - `channels/by-gain-N.html`, `channels/by-id-N.html`: every channel, paginated,
//!   sorted by purity gain or by index;
//! - `channels/C.html`: one channel's prototypes before and after training, its
//!   purity before and after, and the classes that use it most;
//! - `gallery.html`: explanations of held-out images, each channel linked to its page.
//!
//! Pictures are files under `img/` and `explanations/`; every link is relative.
mod html;

use crate::data::{transform, DataSource};
use crate::disentangle::Disentangler;
use crate::explain::{ExplainOptions, Run};
use crate::study::Study;
use html::{escape, page, table};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// What the report holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// Channels per page of the channel lists.
    pub per_page: usize,
    /// Held-out images explained in the gallery.
    pub explanations: usize,
    /// Prototypes per channel.
    pub prototypes: i64,
    /// Channels per explanation.
    pub channels: i64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { per_page: 100, explanations: 12, prototypes: 5, channels: 3 }
    }
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    /// `RUN_DIR/report/index.html`.
    pub index: PathBuf,
    /// HTML pages written.
    pub pages: usize,
    /// Pictures written.
    pub images: usize,
}

/// Side of a prototype thumbnail, pixels.
const THUMB: u32 = 112;

fn write(path: &Path, text: &str) -> crate::Result<()> {
    crate::io::atomic::write_bytes_atomic(path, text.as_bytes())
}

fn source_text(s: &DataSource) -> String {
    match s {
        DataSource::FashionMnist { dir, split, per_class } => format!(
            "Fashion-MNIST {split} split from {}{}",
            dir.display(),
            match per_class {
                Some(1) => ", the first image of each class".to_string(),
                Some(n) => format!(", the first {n} images of each class"),
                None => String::new(),
            }
        ),
        DataSource::ImageFolder { root } => format!("image folder {}", root.display()),
    }
}

fn fmt(x: f64) -> String {
    format!("{x:.4}")
}

fn gain_cell(g: f64) -> String {
    format!("<span class=\"{}\">{:+.4}</span>", if g >= 0.0 { "gain-up" } else { "gain-down" }, g)
}

/// Per channel: mean purity of its top-`m` prototypes under `d`, `[C]`.
fn channel_purity(study: &Study, d: &Disentangler, m: i64) -> crate::Result<Vec<f64>> {
    let c = study.channels();
    Ok(Vec::<f64>::try_from(study.purities(d, m)?.f_reshape([c, m])?.f_mean_dim(1, false, Kind::Double)?)?)
}

fn rows_of(t: &Tensor) -> crate::Result<Vec<Vec<usize>>> {
    Ok(Vec::<Vec<i64>>::try_from(t)?.into_iter().map(|r| r.into_iter().map(|i| i as usize).collect()).collect())
}

/// Mean contribution A′[y,c]·ReLU(v_c) over each class's training images, `[K,C]`.
fn class_usage(run: &Run) -> crate::Result<Tensor> {
    let study = &run.study;
    let bank = study.bank();
    let (u, weight) = crate::explain::explanation::rotated_head(study, &run.disentangler, tch::Device::Cpu)?;
    let v = bank.pooled(Some(&u))?.f_relu()?;
    let k = weight.size()[0];
    let valid = bank.valid.f_to_kind(Kind::Float)?.f_unsqueeze(1)?;
    let onehot = bank.labels.f_one_hot(k)?.f_to_kind(Kind::Float)?.f_mul(&valid)?;
    let counts = onehot.f_sum_dim_intlist([0i64].as_slice(), false, Kind::Float)?.f_clamp_min(1.0)?.f_unsqueeze(1)?;
    let means = onehot.f_tr()?.f_matmul(&v)?.f_div(&counts)?;
    Ok(means.f_mul(&weight)?)
}

/// Writes the report of `run` (see the module docs).
pub fn write_report(run: &Run, options: &ReportOptions) -> crate::Result<ReportSummary> {
    let study = &run.study;
    let d = &run.disentangler;
    let m = options.prototypes.max(1);
    let out = run.dir.join("report");
    for sub in ["img/train", "img/plots", "channels", "explanations"] {
        let dir = out.join(sub);
        crate::io::access::check_write(&dir)?;
        std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
    }
    let channels = study.channels();
    let names = study.class_names();
    let identity = Disentangler::identity(d.kind(), channels, d.device())?;
    let before = channel_purity(study, &identity, m)?;
    let after = channel_purity(study, d, m)?;
    let bank = study.bank();
    let protos_before = rows_of(&bank.top_prototypes(None, m)?)?;
    let protos_after = rows_of(&bank.top_prototypes(Some(&d.matrix()?), m)?)?;
    let usage = class_usage(run)?;
    let top_classes = Vec::<Vec<i64>>::try_from(usage.f_tr()?.f_topk(3.min(usage.size()[0]), 1, true, true)?.1)?;
    let mut images = 0;

    // Thumbnails of every prototype image, once each.
    let train = study.dataset();
    let preprocess = study.network().preprocess();
    let distinct: BTreeSet<usize> = protos_before.iter().chain(&protos_after).flatten().copied().collect();
    for &i in &distinct {
        let img = transform::cropped_rgb(&train.image(i)?, &preprocess)?;
        let img = image::imageops::resize(&img, THUMB, THUMB, image::imageops::FilterType::Triangle);
        super::Canvas::from_image(img).save(&out.join(format!("img/train/{i}.png")))?;
        images += 1;
    }
    let label = |i: usize| names.get(train.label(i) as usize).cloned().unwrap_or_default();
    let thumbs = |row: &[usize], root: &str| {
        let mut s = String::from("<div class=\"thumbs\">");
        for &i in row {
            s.push_str(&format!(
                "<figure><img src=\"{root}img/train/{i}.png\" alt=\"training image {i}\"><figcaption>#{i} {}</figcaption></figure>",
                escape(&label(i))
            ));
        }
        s.push_str("</div>");
        s
    };

    // The run's own plots.
    let kind = d.kind().name();
    let mut plots = String::new();
    for name in [format!("{kind}_train.png"), format!("{kind}_purity_histogram.png")] {
        let from = run.dir.join(&name);
        if from.is_file() {
            let bytes = std::fs::read(&from).map_err(|source| crate::Error::Io {
                action: "read",
                path: from.clone(),
                source,
            })?;
            crate::io::atomic::write_bytes_atomic(&out.join("img/plots").join(&name), &bytes)?;
            plots.push_str(&format!("<img src=\"img/plots/{name}\" alt=\"{name}\">"));
            images += 1;
        }
    }

    // The gallery: held-out images, evenly spaced, explained.
    let mut gallery = String::from("<div class=\"gallery\">");
    let mut explained_in: Vec<Vec<usize>> = vec![Vec::new(); channels as usize];
    let mut shown = 0;
    if let Some(val) = &run.val {
        let n = val.len().min(options.explanations);
        let eopts = ExplainOptions { channels: options.channels, prototypes: m, class: None };
        for j in 0..n {
            let i = j * val.len() / n.max(1);
            let x = transform::preprocess(&val.image(i)?, &preprocess)?.f_to_device(study.network().device())?;
            let e = study.explain(d, &x, &eopts)?;
            study.explanation_figure(&e, &x, false)?.save(&out.join(format!("explanations/{i}.png")))?;
            images += 1;
            shown += 1;
            let truth = val.class_names().get(val.label(i) as usize).cloned().unwrap_or_default();
            let links: Vec<String> = e
                .channels
                .iter()
                .zip(&e.scores)
                .map(|(&c, s)| format!("<a href=\"channels/{c}.html\">channel {c}</a> ({s:+.3})"))
                .collect();
            for &c in &e.channels {
                explained_in[c as usize].push(i);
            }
            gallery.push_str(&format!(
                "<figure id=\"image-{i}\"><figcaption><b>held-out image {i}</b> ({}): predicted {} (p = {:.3}); {}</figcaption>\
<img src=\"explanations/{i}.png\" alt=\"explanation of held-out image {i}\"></figure>",
                escape(&truth),
                escape(&e.name),
                e.prob,
                links.join(", ")
            ));
        }
    }
    gallery.push_str("</div>");

    let subtitle = format!("{} · C = {channels} · {} training images · {} U", run.manifest.model, study.len(), kind);
    let mut pages = 0;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let gain: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();

    // Channel pages.
    for c in 0..channels as usize {
        let usage_rows: Vec<Vec<String>> = top_classes[c]
            .iter()
            .map(|&y| {
                vec![
                    escape(&names.get(y as usize).cloned().unwrap_or_else(|| format!("class {y}"))),
                    format!("{:+.4}", usage.double_value(&[y, c as i64])),
                ]
            })
            .collect();
        let mut body = format!(
            "<p><a href=\"by-id-{}.html\">all channels</a></p>{}",
            c / options.per_page.max(1) + 1,
            table(
                &["", "before training (U = I)", "after training"],
                &[
                    vec![format!("mean purity of the top {m}"), fmt(before[c]), fmt(after[c])],
                    vec!["gain".into(), String::new(), gain_cell(gain[c])]
                ]
            )
        );
        body.push_str(&format!("<h2>Prototypes before training</h2>{}", thumbs(&protos_before[c], "../")));
        body.push_str(&format!("<h2>Prototypes after training</h2>{}", thumbs(&protos_after[c], "../")));
        body.push_str(&format!(
            "<h2>Classes that use it most</h2><p>Mean contribution A′[y,c]·ReLU(v<sub>c</sub>) over each class's training images.</p>{}",
            table(&["class", "mean contribution"], &usage_rows)
        ));
        if !explained_in[c].is_empty() {
            let links: Vec<String> = explained_in[c]
                .iter()
                .map(|i| format!("<a href=\"../gallery.html#image-{i}\">image {i}</a>"))
                .collect();
            body.push_str(&format!("<h2>In the gallery</h2><p>It explains {}.</p>", links.join(", ")));
        }
        write(&out.join(format!("channels/{c}.html")), &page(&format!("Channel {c}"), &subtitle, "../", &body))?;
        pages += 1;
    }

    // Channel lists, paginated, two orders.
    let per = options.per_page.max(1);
    let n_pages = (channels as usize).div_ceil(per);
    let mut by_gain: Vec<usize> = (0..channels as usize).collect();
    by_gain.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]).then(a.cmp(&b)));
    let by_id: Vec<usize> = (0..channels as usize).collect();
    for (order, list, other) in [("by-gain", &by_gain, "by-id"), ("by-id", &by_id, "by-gain")] {
        for p in 0..n_pages {
            let rows: Vec<Vec<String>> = list[p * per..((p + 1) * per).min(list.len())]
                .iter()
                .map(|&c| {
                    vec![
                        format!("<a href=\"{c}.html\">channel {c}</a>"),
                        fmt(before[c]),
                        fmt(after[c]),
                        gain_cell(gain[c]),
                        escape(&names.get(top_classes[c][0] as usize).cloned().unwrap_or_default()),
                    ]
                })
                .collect();
            let nav: Vec<String> =
                (1..=n_pages)
                    .map(|q| {
                        if q == p + 1 {
                            format!("<b>{q}</b>")
                        } else {
                            format!("<a href=\"{order}-{q}.html\">{q}</a>")
                        }
                    })
                    .collect();
            let body = format!(
                "<p>Sorted {}; <a href=\"{other}-1.html\">sort {}</a>.</p><p class=\"pages\">Page {}</p>{}<p class=\"pages\">{}</p>",
                if order == "by-gain" { "by purity gain, largest first" } else { "by channel index" },
                if order == "by-gain" { "by channel index" } else { "by purity gain" },
                nav.join(" "),
                table(&["channel", "purity before", "purity after", "gain", "class using it most"], &rows),
                nav.join(" ")
            );
            write(&out.join(format!("channels/{order}-{}.html", p + 1)), &page("Channels", &subtitle, "../", &body))?;
            pages += 1;
        }
    }

    // The gallery page.
    let body = if shown == 0 {
        "<p>The run recorded no held-out images.</p>".to_string()
    } else {
        format!(
            "<p>{shown} held-out images, each with its top {} channels and their prototypes.</p>{gallery}",
            options.channels
        )
    };
    write(&out.join("gallery.html"), &page("Explanations", &subtitle, "", &body))?;
    pages += 1;

    // The summary.
    let manifest = &run.manifest;
    let mut body = String::from("<h2>Run</h2>");
    let mut facts = vec![
        vec![
            "model".to_string(),
            escape(&format!("{} (C = {channels}, map {}×{})", manifest.model, bank.map_size.0, bank.map_size.1)),
        ],
        vec!["training images".into(), escape(&format!("{}: {}", study.len(), source_text(&manifest.train)))],
    ];
    if let Some(v) = &manifest.val {
        facts.push(vec![
            "held-out images".into(),
            escape(&format!("{}: {}", run.val.as_ref().map_or(0, |d| d.len()), source_text(v))),
        ]);
    }
    facts.push(vec!["U".into(), escape(kind)]);
    if let Some(cmd) = &manifest.command {
        facts.push(vec!["made by".into(), format!("<code>{}</code>", escape(cmd))]);
    }
    body.push_str(&table(&["", ""], &facts));
    body.push_str(&format!(
        "<h2>Purity</h2>{}",
        table(
            &["", "before training (U = I)", "after training"],
            &[vec![format!("mean purity of the top-{m} prototypes"), fmt(mean(&before)), fmt(mean(&after))]]
        )
    ));
    if !plots.is_empty() {
        body.push_str(&format!("<div class=\"plots\">{plots}</div>"));
    }
    let evaluation = run.dir.join("evaluation.json");
    if let Ok(text) = std::fs::read_to_string(&evaluation) {
        if let Ok(e) = serde_json::from_str::<serde_json::Value>(&text) {
            let pct = |k: &str| e[k].as_f64().map_or("?".into(), |x| format!("{:.1} %", 100.0 * x));
            let mut rows = vec![
                vec!["held-out images".into(), e["images"].to_string()],
                vec!["accuracy, original head A".into(), pct("accuracy_original")],
                vec!["accuracy, modified head A·U⁻¹".into(), pct("accuracy_modified")],
                vec!["prediction agreement".into(), pct("agreement")],
                vec![
                    "prototype consistency, before → after".into(),
                    format!("{} → {}", pct("consistency_before"), pct("consistency_after")),
                ],
                vec![
                    "coverage (distinct prototype images), before → after".into(),
                    format!("{} → {}", e["coverage_before"], e["coverage_after"]),
                ],
            ];
            for row in e["deletion"].as_array().into_iter().flatten() {
                rows.push(vec![
                    escape(&format!(
                        "remove the top {} {} channel(s)",
                        row["k"],
                        row["channels"].as_str().unwrap_or("")
                    )),
                    format!(
                        "flips {:.1} %, p drops {:.3}",
                        100.0 * row["flip_rate"].as_f64().unwrap_or(0.0),
                        row["mean_probability_drop"].as_f64().unwrap_or(0.0)
                    ),
                ]);
            }
            body.push_str(&format!("<h2>Evaluation</h2>{}", table(&["quantity", "value"], &rows)));
        }
    } else {
        body.push_str(
            "<h2>Evaluation</h2><p>Not evaluated yet: <code>epic evaluate RUN_DIR</code>, then report again.</p>",
        );
    }
    let best: Vec<Vec<String>> = by_gain
        .iter()
        .take(10)
        .map(|&c| {
            vec![
                format!("<a href=\"channels/{c}.html\">channel {c}</a>"),
                fmt(before[c]),
                fmt(after[c]),
                gain_cell(gain[c]),
            ]
        })
        .collect();
    body.push_str(&format!(
        "<h2>Channels that gained most</h2>{}<p><a href=\"channels/by-gain-1.html\">all {channels} channels</a> · \
<a href=\"gallery.html\">{shown} explanations</a></p>",
        table(&["channel", "purity before", "purity after", "gain"], &best)
    ));
    let config = std::fs::read_to_string(run.dir.join(".epic/config.yaml")).unwrap_or_default();
    body.push_str(&format!("<h2>Resolved config</h2><pre>{}</pre>", escape(&config)));
    let index = out.join("index.html");
    write(&index, &page(&format!("EPIC run {}", run.dir.display()), &subtitle, "", &body))?;
    pages += 1;
    Ok(ReportSummary { index, pages, images })
}
