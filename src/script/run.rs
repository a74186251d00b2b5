//! Script bindings for a finished run: what `epic explain` and `epic evaluate`
//! do, from a script or a notebook cell. Each opens the run folder (its
//! `.epic/run.json`, head, U file and cached bank) on the host's device.
use super::tensor::json_to_dynamic;
use crate::config::Section;
use crate::explain::Run;
use crate::render::explain_run::{class_view_files, explain_images, resolve_class, ExplainRequest};
use rhai::plugin::*;
use rhai::{Array, Map};
use std::path::{Path, PathBuf};

fn request(opts: &Section) -> Result<(ExplainRequest, Option<PathBuf>), Box<EvalAltResult>> {
    let d = ExplainRequest::default();
    let r = ExplainRequest {
        classes: opts.int(&["classes"], d.classes)?,
        channels: opts.int(&["channels"], d.channels)?,
        prototypes: opts.int(&["prototypes"], d.prototypes)?,
        gray: opts.bool(&["gray"], d.gray)?,
    };
    Ok((r, opts.string(&["out"])?.map(PathBuf::from)))
}

fn open(ctx: &NativeCallContext, dir: &str) -> Result<Run, Box<EvalAltResult>> {
    Ok(Run::open(Path::new(dir), crate::script::host_device(ctx), true)?)
}

fn out_dir(dir: &str, out: Option<PathBuf>) -> Result<PathBuf, Box<EvalAltResult>> {
    let out = out.unwrap_or_else(|| Path::new(dir).join("explain"));
    crate::io::access::check_write(&out).map_err(crate::Error::from)?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    Ok(out)
}

/// The script functions for finished runs (see `epic doc`).
#[export_module]
pub mod api {
    /// Explains image files with the finished run in `dir`, as `epic explain`:
    /// one figure per image and `explanations.json` in `opts.out` (default
    /// `dir/explain`); returns that JSON. `opts`: `classes` (1: the prediction;
    /// 2: why the top class, not the second; K: the top K side by side),
    /// `channels` (4), `prototypes` (5), `gray`, `out`.
    ///
    /// ```rhai
    /// let doc = explain_images("outputs/demo", ["photo.jpg"], #{ classes: 2 });
    /// print(doc.images[0].contrast.margin);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn explain_images(
        ctx: NativeCallContext,
        dir: &str,
        images: Array,
        opts: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let (r, out) = request(&Section::at(&value, "explain_images")?)?;
        let run = open(&ctx, dir)?;
        let out = out_dir(dir, out)?;
        let paths: Vec<PathBuf> = images.iter().map(|v| PathBuf::from(v.to_string())).collect();
        Ok(json_to_dynamic(super::explain_images(&run, &paths, &r, &out)?))
    }

    /// The class view of `class` (a name or an index as a string) with the run in
    /// `dir`, as `epic explain --class`: `class_<index>.png` and `.json` in
    /// `opts.out`; returns the JSON. `opts`: `channels`, `prototypes`, `negative`
    /// (also the lowest-activation prototypes), `gray`, `out`.
    ///
    /// ```rhai
    /// let v = class_view("outputs/demo", "Sneaker", #{ negative: true });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn class_view(
        ctx: NativeCallContext,
        dir: &str,
        class: &str,
        opts: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let opts = Section::at(&value, "class_view")?;
        let (r, out) = request(&opts)?;
        let negative = opts.bool(&["negative"], false)?;
        let run = open(&ctx, dir)?;
        let index = resolve_class(class, &run.study.class_names())?;
        let out = out_dir(dir, out)?;
        Ok(json_to_dynamic(class_view_files(&run, index, &r, negative, &out)?))
    }

    /// Writes the run's static site, `dir/report/index.html`, as `epic report`:
    /// the summary, a page per channel (paginated lists sorted by purity gain or
    /// index), a gallery of explanations. `opts`: `per_page` (100),
    /// `explanations` (12), `prototypes` (5). Returns the index page's path.
    ///
    /// ```rhai
    /// let index = write_report("outputs/demo", #{ explanations: 6 });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn write_report(ctx: NativeCallContext, dir: &str, opts: Map) -> Result<String, Box<EvalAltResult>> {
        let d = crate::render::report::ReportOptions::default();
        let value = crate::script::options(&opts);
        let opts = Section::at(&value, "write_report")?;
        let options = crate::render::report::ReportOptions {
            per_page: opts.int(&["per_page"], d.per_page as i64)?.max(1) as usize,
            explanations: opts.int(&["explanations"], d.explanations as i64)?.max(0) as usize,
            prototypes: opts.int(&["prototypes"], d.prototypes)?.max(1),
            ..d
        };
        let r = crate::render::report::write_report(&open(&ctx, dir)?, &options)?;
        Ok(r.index.display().to_string())
    }

    /// Evaluates the run in `dir` on its held-out images, as `epic evaluate`:
    /// accuracy of both heads and their agreement, deletion faithfulness,
    /// prototype consistency, coverage, written to `dir/evaluation.json` and
    /// returned. `opts`: `prototypes` (5), `seed` (0).
    ///
    /// ```rhai
    /// let e = evaluate_run("outputs/demo", #{});
    /// print(`agreement ${e.agreement}`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn evaluate_run(ctx: NativeCallContext, dir: &str, opts: Map) -> Result<Dynamic, Box<EvalAltResult>> {
        let value = crate::script::options(&opts);
        let opts = Section::at(&value, "evaluate_run")?;
        let run = open(&ctx, dir)?;
        let e = run.evaluate(opts.int(&["prototypes"], 5)?, opts.int(&["seed"], 0)?, true)?;
        e.save(&run.dir)?;
        let value = serde_json::to_value(&e).map_err(|e| e.to_string())?;
        Ok(json_to_dynamic(value))
    }
}
