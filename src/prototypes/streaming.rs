//! Top-m prototype selection over activations that arrive in row blocks (a bank
//! kept on disk, read a chunk at a time), exactly equal to [`top_prototypes`]
//! over the whole matrix, ties included.
//!
//! The order is total: larger activation first, then lower image index. Under a
//! total order the top m of a union lie within the union of each part's top m,
//! so keeping per channel the running top m, and merging each block's exact top
//! m into it, is exact. Each block is ranked by [`top_prototypes`] itself (with
//! its own fallback for ties at the cut), and a merge orders the gathered
//! candidates of every channel by (value, index) with a stable sort.
//!
//! Memory: up to 5m candidates per channel (values and indices), plus what
//! ranking one block needs (its `[C,n]` transpose and a `topk`).
use super::top_prototypes;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// The running top-m of every channel over the blocks pushed so far.
pub struct StreamingTop {
    m: i64,
    /// `[C,k]` activations and image indices of candidates: each block's top m,
    /// merged into one best-first list whenever they reach [`MERGE_AT`]·m.
    candidates: Vec<(Tensor, Tensor)>,
    width: i64,
    seen: i64,
}

/// Candidates per channel, in multiples of m, gathered before a merge: fewer,
/// larger sorts than merging after every block.
const MERGE_AT: i64 = 4;

impl StreamingTop {
    /// An empty selection of `m` prototypes per channel.
    pub fn new(m: i64) -> StreamingTop {
        StreamingTop { m, candidates: Vec::new(), width: 0, seen: 0 }
    }

    /// Adds a block: `activation` `[n,C]` float and the images' indices `[n]`
    /// int64. Indices must increase, within a block and from block to block (the
    /// order of a bank's rows), so that ties go to the lower index as they do in
    /// [`top_prototypes`].
    pub fn push(&mut self, activation: &Tensor, indices: &Tensor) -> Result<()> {
        let n = activation.size()[0];
        if n == 0 {
            return Ok(());
        }
        if self.m < 1 {
            return Err(Error::invalid("top_prototypes", format!("m = {} prototypes asked for; use m >= 1", self.m)));
        }
        self.seen += n;
        let local = top_prototypes(activation, self.m.min(n))?; // [C,k], exact, lower local index first on ties
        let values = activation.f_tr()?.f_gather(1, &local, false)?;
        let index = indices.f_index(&[Some(local.f_reshape([-1])?)])?.f_reshape(local.size())?;
        self.width += values.size()[1];
        self.candidates.push((values, index));
        if self.width >= MERGE_AT * self.m {
            self.merge()?;
        }
        Ok(())
    }

    /// Replaces the candidates by their best m per channel.
    fn merge(&mut self) -> Result<()> {
        if self.candidates.len() > 1 {
            let (values, index): (Vec<Tensor>, Vec<Tensor>) = self.candidates.drain(..).unzip();
            let kept = merge(&Tensor::f_cat(&values, 1)?, &Tensor::f_cat(&index, 1)?, self.m)?;
            self.width = kept.0.size()[1];
            self.candidates.push(kept);
        }
        Ok(())
    }

    /// The top-m image indices per channel, `[C,m]` int64, best first. Errors when
    /// fewer than m images were pushed.
    pub fn finish(mut self) -> Result<Tensor> {
        let m = self.m;
        self.merge()?;
        match self.candidates.pop() {
            Some((_, index)) if self.seen >= m => Ok(index.f_contiguous()?),
            _ => Err(Error::invalid(
                "top_prototypes",
                format!(
                    "m = {m} prototypes asked for, but the set has {} images; use 1 <= m <= {}",
                    self.seen, self.seen
                ),
            )),
        }
    }
}

/// The first `m` of candidates `values`/`index` `[C,k]` per channel in the total
/// order (value descending, index ascending). Indices are distinct within a row.
fn merge(values: &Tensor, index: &Tensor, m: i64) -> Result<(Tensor, Tensor)> {
    let (index, by_index) = index.f_sort(1, false)?;
    let values = values.f_gather(1, &by_index, false)?;
    let (values, by_value) = values.f_sort_stable(true, 1, true)?;
    let index = index.f_gather(1, &by_value, false)?;
    let k = m.min(values.size()[1]);
    Ok((values.f_narrow(1, 0, k)?.f_contiguous()?, index.f_narrow(1, 0, k)?.f_to_kind(Kind::Int64)?.f_contiguous()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brute-force answer: per channel, a stable sort of its whole column.
    fn brute_force(act: &Tensor, m: i64) -> Tensor {
        let (_, order) = act.tr().sort_stable(true, 1, true);
        order.narrow(1, 0, m)
    }

    fn streamed(act: &Tensor, m: i64, block: i64) -> Tensor {
        let n = act.size()[0];
        let mut top = StreamingTop::new(m);
        for s in (0..n).step_by(block as usize) {
            let len = block.min(n - s);
            top.push(&act.narrow(0, s, len), &Tensor::arange_start(s, s + len, (Kind::Int64, tch::Device::Cpu)))
                .unwrap();
        }
        top.finish().unwrap()
    }

    #[test]
    fn streamed_selection_equals_the_whole_sort_with_ties_everywhere() {
        tch::manual_seed(3);
        // Values in {0,1,2,3}: ties at every cut, in every block.
        let act = Tensor::randint(4, [997, 6], (Kind::Float, tch::Device::Cpu));
        for (m, block) in [(1, 1), (5, 7), (50, 64), (100, 997), (30, 1), (200, 333)] {
            let expected = brute_force(&act, m);
            assert!(streamed(&act, m, block).equal(&expected), "m {m}, blocks of {block}");
            assert!(top_prototypes(&act, m).unwrap().equal(&expected), "m {m}, in memory");
        }
    }

    #[test]
    fn streamed_selection_equals_in_memory_on_real_valued_activations() {
        tch::manual_seed(4);
        let act = Tensor::randn([5000, 16], (Kind::Float, tch::Device::Cpu));
        for block in [512, 1000, 4096] {
            assert!(streamed(&act, 100, block).equal(&top_prototypes(&act, 100).unwrap()), "blocks of {block}");
        }
    }

    #[test]
    fn too_few_images_and_nan_are_errors() {
        let act = Tensor::ones([3, 2], (Kind::Float, tch::Device::Cpu));
        let mut top = StreamingTop::new(4);
        top.push(&act, &Tensor::arange(3, (Kind::Int64, tch::Device::Cpu))).unwrap();
        assert!(top.finish().unwrap_err().to_string().contains("the set has 3 images"));
        let bad = Tensor::ones([3, 2], (Kind::Float, tch::Device::Cpu));
        let _ = bad.get(1).get(0).fill_(f64::NAN);
        let mut top = StreamingTop::new(1);
        assert!(top.push(&bad, &Tensor::arange(3, (Kind::Int64, tch::Device::Cpu))).is_err());
    }
}
