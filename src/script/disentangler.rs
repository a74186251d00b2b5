//! Script bindings for training U: the `Disentangler`, `Adam` and `History`
//! handles, the prototype-count schedules, and `train_disentangler`.
use super::rt;
use super::tensor::ScriptTensor;
use crate::config::Section;
use crate::disentangle::{
    purity_step, Adam, AdamConfig, Disentangler, History, MatrixKind, Schedule, ScheduleKind, TrainConfig,
};
use crate::study::Study;
use rhai::plugin::*;
use rhai::{Array, Map};
use rhai::{FLOAT, INT};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// `[[m, purity], …]` as a Rhai array.
fn pairs(v: &[(usize, f64)]) -> Dynamic {
    Dynamic::from_array(
        v.iter()
            .map(|(m, p)| Dynamic::from_array(vec![Dynamic::from_int(*m as INT), Dynamic::from_float(*p)]))
            .collect(),
    )
}

/// A training history as a Rhai map `#{ steps: [[m, purity], …], epochs: [[m, purity], …] }`
/// (how `save_json` writes it).
pub fn history_map(h: &History) -> Map {
    let mut out = Map::new();
    out.insert("steps".into(), pairs(&h.steps));
    out.insert("epochs".into(), pairs(&h.epochs));
    out
}

/// A training history written as a map (`#{ steps, epochs }`, each an array of
/// `[m, purity]`, as `save_json` writes a `History` and `load_json` reads it back).
pub fn history_of(history: &Map, what: &str) -> Result<History, Box<EvalAltResult>> {
    let series = |key: &str| -> Result<Vec<(usize, f64)>, Box<EvalAltResult>> {
        let arr = history
            .get(key)
            .and_then(|v| v.clone().try_cast::<Array>())
            .ok_or(format!("{what}: history.{key} missing"))?;
        arr.iter()
            .map(|p| {
                let p = p.clone().try_cast::<Array>().ok_or(format!("{what}: entries must be [m, purity]"))?;
                match (p.first().and_then(|x| x.as_int().ok()), p.get(1).and_then(|x| x.as_float().ok())) {
                    (Some(m), Some(v)) if m >= 0 => Ok((m as usize, v)),
                    _ => Err(format!("{what}: entries must be [m, purity]").into()),
                }
            })
            .collect()
    };
    Ok(History { steps: series("steps")?, epochs: series("epochs")? })
}

/// A script's handle on a [`Disentangler`]. Clones share it, so an `Adam` made from
/// `d` updates the same U that `d.matrix()` returns.
#[derive(Clone)]
pub struct DisentanglerHandle(pub Rc<RefCell<Disentangler>>);

impl fmt::Display for DisentanglerHandle {
    /// `Disentangler(orthogonal, C = 16, cpu)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0.borrow();
        write!(f, "Disentangler({}, C = {}, {})", d.kind(), d.channels(), crate::device::device_name(d.device()))
    }
}

/// A script's handle on Adam's state, bound to one disentangler.
#[derive(Clone)]
pub struct AdamHandle {
    /// The disentangler it updates.
    pub disentangler: DisentanglerHandle,
    /// Adam's state.
    pub adam: Rc<RefCell<Adam>>,
}

impl fmt::Display for AdamHandle {
    /// `Adam(lr = 0.001, weight_decay = 0.00001, 3 steps)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.adam.borrow();
        let c = a.config();
        write!(f, "Adam(lr = {}, weight_decay = {}, {} steps)", c.lr, c.weight_decay, a.steps())
    }
}

/// The script functions for training U (see `epic doc`).
#[export_module]
pub mod api {
    use super::*;

    /// A libtorch tensor.
    pub type Tensor = ScriptTensor;
    /// The learned change of basis U (orthogonal or invertible) and its raw matrix A.
    pub type Disentangler = DisentanglerHandle;
    /// Adam's state for one disentangler (torch.optim.Adam, coupled L2 weight decay).
    pub type Adam = AdamHandle;
    /// Mean purities recorded during training: per schedule step and per epoch.
    pub type History = crate::disentangle::History;
    /// A feature bank with its network, data set and prototype-map memo.
    pub type Bank = Study;

    /// A disentangler of kind `"orthogonal"` (U = exp(A − Aᵀ)) or `"invertible"`
    /// (U = exp(A)), starting from the raw matrix A `[C,C]` (copied).
    ///
    /// ```rhai
    /// let d = disentangler("orthogonal", v.a_raw);
    /// ```
    #[rhai_fn(name = "disentangler", return_raw)]
    pub fn disentangler_from(kind: &str, a_raw: Tensor) -> Result<Disentangler, Box<EvalAltResult>> {
        let kind: MatrixKind = rt(kind.parse())?;
        rt(crate::disentangle::Disentangler::from_raw(kind, &a_raw.0))
            .map(|d| DisentanglerHandle(Rc::new(RefCell::new(d))))
    }

    /// A disentangler of kind `"orthogonal"` or `"invertible"` on C channels, at
    /// U = I (A = 0), on the host's device.
    ///
    /// ```rhai
    /// let d = disentangler("orthogonal", 512);
    /// ```
    #[rhai_fn(name = "disentangler", return_raw)]
    pub fn disentangler_identity(
        ctx: NativeCallContext,
        kind: &str,
        channels: INT,
    ) -> Result<Disentangler, Box<EvalAltResult>> {
        let kind: MatrixKind = rt(kind.parse())?;
        let device = super::super::host_device(&ctx);
        rt(crate::disentangle::Disentangler::identity(kind, channels, device))
            .map(|d| DisentanglerHandle(Rc::new(RefCell::new(d))))
    }

    /// Saves U as the reference does: `<dir>/<type>.pt` (torch.save of
    /// `{"A_raw": A}`) and `<dir>/<type>.safetensors`; returns the .pt path.
    ///
    /// ```rhai
    /// save_disentangler(d, cfg.output_path);   // outputs/…/orthogonal.pt
    /// ```
    #[rhai_fn(return_raw)]
    pub fn save_disentangler(d: Disentangler, dir: &str) -> Result<String, Box<EvalAltResult>> {
        rt(crate::disentangle::store::save(&d.0.borrow(), std::path::Path::new(dir)))
            .map(|(pt, _)| pt.display().to_string())
    }

    /// A disentangler of kind `"orthogonal"` or `"invertible"` from a U file
    /// (`.pt` of epic or the reference code, or `.safetensors`): to resume or explain.
    ///
    /// ```rhai
    /// let d = load_disentangler("orthogonal", "outputs/imagenet_resnet34/orthogonal.pt");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn load_disentangler(kind: &str, path: &str) -> Result<Disentangler, Box<EvalAltResult>> {
        let kind: MatrixKind = rt(kind.parse())?;
        rt(crate::disentangle::store::load(kind, std::path::Path::new(path)))
            .map(|d| DisentanglerHandle(Rc::new(RefCell::new(d))))
    }

    /// U `[C,C]`.
    ///
    /// ```rhai
    /// let u = d.matrix();
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn matrix(d: &mut Disentangler) -> Result<Tensor, Box<EvalAltResult>> {
        rt(d.0.borrow().matrix()).map(ScriptTensor)
    }

    /// U⁻¹ `[C,C]` in closed form: Uᵀ (orthogonal) or exp(−A) (invertible).
    ///
    /// ```rhai
    /// let w2 = matmul(v.fc_weight, d.inverse());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn inverse(d: &mut Disentangler) -> Result<Tensor, Box<EvalAltResult>> {
        rt(d.0.borrow().inverse()).map(ScriptTensor)
    }

    /// A copy of the raw matrix A `[C,C]` (the reference's `A_raw`).
    ///
    /// ```rhai
    /// save_tensors(#{ A_raw: d.a_raw() }, "outputs/orthogonal.safetensors");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn a_raw(d: &mut Disentangler) -> Result<Tensor, Box<EvalAltResult>> {
        rt(d.0.borrow().a_raw_copy()).map(ScriptTensor)
    }

    /// `"orthogonal"` or `"invertible"`.
    #[rhai_fn(pure, get = "kind")]
    pub fn kind(d: &mut Disentangler) -> String {
        d.0.borrow().kind().name().to_string()
    }

    /// C, the number of channels.
    #[rhai_fn(pure, get = "channels")]
    pub fn channels(d: &mut Disentangler) -> INT {
        d.0.borrow().channels()
    }

    /// Adam on the disentangler's A, with torch.optim.Adam's betas (0.9, 0.999),
    /// eps 1e-8 and coupled L2 `weight_decay` (the reference uses lr 1e-3, 1e-5).
    ///
    /// ```rhai
    /// let opt = adam(d, 1e-3, 1e-5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn adam(d: Disentangler, lr: FLOAT, weight_decay: FLOAT) -> Result<Adam, Box<EvalAltResult>> {
        let config = rt(AdamConfig::new(lr, weight_decay))?;
        let state = rt(crate::disentangle::Adam::new(d.0.borrow().a_raw(), config))?;
        Ok(AdamHandle { disentangler: d, adam: Rc::new(RefCell::new(state)) })
    }

    /// One step on the purity loss: −mean purity of features `[B,C,H,W]` (prototype
    /// maps) on channels `[B]` under the current U; updates A in place and returns the
    /// loss before the update.
    ///
    /// ```rhai
    /// let loss = opt.step(select_rows(v.features, rows), select_rows(v.channels, rows));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn step(opt: &mut Adam, features: Tensor, channels: Tensor) -> Result<FLOAT, Box<EvalAltResult>> {
        let mut d = opt.disentangler.0.borrow_mut();
        let mut adam = opt.adam.borrow_mut();
        rt(purity_step(&mut d, &mut adam, &features.0, &channels.0))
    }

    /// How many steps this optimiser has taken.
    #[rhai_fn(pure, get = "steps")]
    pub fn steps(opt: &mut Adam) -> INT {
        opt.adam.borrow().steps()
    }

    /// Numbers of prototypes per channel for each training step: kind `"lin"`
    /// (start to end inclusive, as the paper), `"exp"`, `"log"` (as the reference),
    /// or `"lin_reference"` (the reference's linear schedule, which stops short).
    ///
    /// ```rhai
    /// let ms = schedule("lin", 100, 5, 10);   // `[100, 89, 79, 68, 58, 47, 37, 26, 16, 5]`
    /// ```
    #[rhai_fn(return_raw)]
    pub fn schedule(kind: &str, start: INT, end: INT, steps: INT) -> Result<Array, Box<EvalAltResult>> {
        let kind: ScheduleKind = rt(kind.parse())?;
        let non_neg =
            |x: INT, name: &str| usize::try_from(x).map_err(|_| format!("schedule: {name} = {x} must be >= 0"));
        let s = rt(Schedule::new(kind, non_neg(start, "start")?, non_neg(end, "end")?, non_neg(steps, "steps")?))?;
        Ok(s.values().into_iter().map(|v| Dynamic::from_int(v as INT)).collect())
    }

    /// Trains U on the bank through the schedule in `cfg` (the reference config's
    /// keys: `seed`, `prototypes.scheduler.*`, `training.*`, with
    /// `dataloader.batch_size` as the pairs per Adam step unless
    /// `training.batch_size` is given); returns the history.
    ///
    /// ```rhai
    /// let history = train_disentangler(bank, d, cfg);
    /// print(history.steps);   // [`[m, purity]`, …]
    /// ```
    #[rhai_fn(return_raw)]
    pub fn train_disentangler(bank: Bank, d: Disentangler, cfg: Map) -> Result<History, Box<EvalAltResult>> {
        let value = super::super::options(&cfg);
        let config = TrainConfig::from_config(&Section::root(&value)?)?;
        Ok(bank.train(&mut d.0.borrow_mut(), &config)?)
    }

    /// Per schedule step: `[m, mean purity of the freshly selected prototypes]`.
    #[rhai_fn(pure, get = "steps")]
    pub fn history_steps(h: &mut History) -> Array {
        pairs(&h.steps).cast::<Array>()
    }

    /// Per epoch: `[m, mean of the batch purities]`.
    #[rhai_fn(pure, get = "epochs")]
    pub fn history_epochs(h: &mut History) -> Array {
        pairs(&h.epochs).cast::<Array>()
    }

    /// `History(3 steps, 6 epochs; purity 0.0474 → 0.0563)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_history(h: &mut History) -> String {
        h.to_string()
    }

    /// `Disentangler(orthogonal, C = 16, cpu)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_disentangler(d: &mut Disentangler) -> String {
        d.to_string()
    }

    /// `Adam(lr = 0.001, weight_decay = 0.00001, 3 steps)`
    #[rhai_fn(pure, name = "to_string", name = "to_debug")]
    pub fn describe_adam(opt: &mut Adam) -> String {
        opt.to_string()
    }
}
