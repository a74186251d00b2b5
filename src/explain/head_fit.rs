//! A linear head fitted on a bank: softmax regression of the labels on the
//! pooled features avgpool(Z) = sums/(h·w). This turns an ImageNet backbone into
//! a classifier of another data set (the demo's Fashion-MNIST) without another
//! backbone pass; EPIC then explains that classifier.
use crate::disentangle::{Adam, AdamConfig};
use crate::error::{Error, Result};
use crate::features::Bank;
use crate::study::Study;
use tch::{Kind, Tensor};

/// A fitted head and how well it fits.
#[derive(Debug)]
pub struct FittedHead {
    /// `[K,C]`
    pub weight: Tensor,
    /// `[K]`
    pub bias: Tensor,
    /// Accuracy on the bank's own (valid) images.
    pub train_accuracy: f64,
}

/// How to fit a head: full-batch Adam steps and their learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadFit {
    /// Adam steps over the whole bank (300).
    pub iterations: usize,
    /// Adam's learning rate (0.05).
    pub lr: f64,
}

impl Default for HeadFit {
    fn default() -> Self {
        HeadFit { iterations: 300, lr: 0.05 }
    }
}

/// Fits weight `[K,C]` and bias `[K]` for `classes` = K by full-batch Adam (lr
/// `lr`, `iterations` steps, coupled L2 1e-4) on the cross-entropy of the bank's
/// labels. Deterministic: zero start, no sampling.
pub fn fit_head(bank: &Bank, classes: i64, iterations: usize, lr: f64) -> Result<FittedHead> {
    let valid = bank.valid.f_nonzero()?.f_squeeze_dim(1)?;
    if valid.size()[0] == 0 {
        return Err(Error::invalid("fit_head", "the bank has no valid images"));
    }
    let hw = (bank.map_size.0 * bank.map_size.1) as f64;
    let x = bank.sums()?.f_index_select(0, &valid)?.f_div_scalar(hw)?;
    let y = bank.labels.f_index_select(0, &valid)?;
    let (lo, hi) = (y.f_min()?.f_int64_value(&[])?, y.f_max()?.f_int64_value(&[])?);
    if lo < 0 || hi >= classes {
        return Err(Error::OutOfRange {
            what: "fit_head labels".into(),
            index: if lo < 0 { lo } else { hi },
            bound: classes,
        });
    }
    let c = x.size()[1];
    let mut w = Tensor::f_zeros([classes, c], (Kind::Float, x.device()))?;
    let mut b = Tensor::f_zeros([classes], (Kind::Float, x.device()))?;
    let cfg = AdamConfig::new(lr, 1e-4)?;
    let (mut opt_w, mut opt_b) = (Adam::new(&w, cfg)?, Adam::new(&b, cfg)?);
    for _ in 0..iterations {
        let (wv, bv) = (w.f_detach()?.f_set_requires_grad(true)?, b.f_detach()?.f_set_requires_grad(true)?);
        let loss =
            x.f_linear(&wv, Some(&bv))?.f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.0)?;
        loss.f_backward()?;
        opt_w.update(&mut w, &wv.f_grad()?)?;
        opt_b.update(&mut b, &bv.f_grad()?)?;
    }
    let pred = x.f_linear(&w, Some(&b))?.f_argmax(1, false)?;
    let train_accuracy = pred.f_eq_tensor(&y)?.f_to_kind(Kind::Double)?.f_mean(Kind::Double)?.f_double_value(&[])?;
    Ok(FittedHead { weight: w, bias: b, train_accuracy })
}

impl Study {
    /// Fits a `classes`-way linear head on the bank's pooled features
    /// ([`fit_head`]) and returns the study with that network (the backbone
    /// shared, its classes named as the data set's when it has as many), whose
    /// predictions come from the new head, and the fitted head.
    pub fn fit_head(&self, classes: i64, fit: &HeadFit) -> Result<(Study, FittedHead)> {
        let fitted = fit_head(self.bank(), classes, fit.iterations, fit.lr)?;
        let mut net = self.network().with_head(&fitted.weight, &fitted.bias)?;
        let names = self.dataset().class_names();
        if names.len() as i64 == classes {
            net = net.with_class_names(names.to_vec())?;
        }
        Ok((self.with_network(net)?, fitted))
    }
}
