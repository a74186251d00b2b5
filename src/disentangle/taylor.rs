//! Taylor's polynomials of the exponential, T_m(N) = Σ_{k≤m} N^k/k!, as short
//! programs of matrix products, run on tensors forwards (the value) and along a
//! direction (the Fréchet derivative, by the product rule).
//!
//! Paterson–Stockmeyer needs 4 products for degree 8, 5 for 12 and 6 for 16.
//! Bader, Blanes and Casas (*Computing the matrix exponential with an optimized
//! Taylor polynomial approximation*, Mathematics 7(12):1174, 2019) write T_8,
//! T_12 and T_18 as products of linear combinations of I, N, N², N³ (and N⁶)
//! with 3, 4 and 5 products; libtorch's own `matrix_exp` uses the same forms
//! (with one coefficient of T_8 wrong in 2.13: see [`Program::taylor`]).
//! Their coefficients solve polynomial systems. The tests here expand every
//! program as a polynomial in one variable and check that it is Taylor's to its
//! degree, so a mistyped digit cannot pass.
//!
//! A program is a list of [`Op`]s over values, value 0 being N. The derivative
//! of a linear combination is the same combination of derivatives (I's is 0);
//! of a product, d(XY) = dX·Y + X·dY: two products for each one of the value.
use crate::error::Result;
#[cfg(test)]
use tch::Kind;
use tch::Tensor;

/// An operand: the identity or an earlier value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Src {
    I,
    V(usize),
}

/// One instruction; each appends its results to the values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// One value per row: Σ_j row[j]·inputs[j].
    Lin { inputs: Vec<Src>, rows: Vec<Vec<f64>> },
    /// values[a]·values[b], plus values[c] when given.
    Mul { a: usize, b: usize, plus: Option<usize> },
}

/// A polynomial in N as a program.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Program {
    pub ops: Vec<Op>,
    /// Values so far (N is value 0).
    values: usize,
}

impl Program {
    fn new() -> Self {
        Program { ops: Vec::new(), values: 1 }
    }

    fn mul(&mut self, a: usize, b: usize, plus: Option<usize>) -> usize {
        self.ops.push(Op::Mul { a, b, plus });
        self.values += 1;
        self.values - 1
    }

    /// The values of `rows` (each a combination of `inputs`), first index returned.
    fn lin(&mut self, inputs: &[Src], rows: &[&[f64]]) -> usize {
        let first = self.values;
        self.ops.push(Op::Lin { inputs: inputs.to_vec(), rows: rows.iter().map(|r| r.to_vec()).collect() });
        self.values += rows.len();
        first
    }

    /// The index of the last value: the program's result.
    pub fn result(&self) -> usize {
        self.values - 1
    }

    /// Matrix products (each costs one C×C product forwards, two along a direction).
    #[cfg(test)]
    pub fn products(&self) -> usize {
        self.ops.iter().filter(|op| matches!(op, Op::Mul { .. })).count()
    }

    /// Appends `s` squarings of the result.
    pub fn square(mut self, s: usize) -> Self {
        for _ in 0..s {
            let x = self.result();
            self.mul(x, x, None);
        }
        self
    }

    /// T_degree for a degree of [`DEGREES`], exactly in exact arithmetic.
    pub fn taylor(degree: usize) -> Self {
        use Src::{I, V};
        const N: Src = V(0);
        let mut p = Program::new();
        match degree {
            1 => {
                p.lin(&[I, N], &[&[1.0, 1.0]]);
            }
            2 => {
                let n2 = p.mul(0, 0, None);
                p.lin(&[I, N, V(n2)], &[&[1.0, 1.0, 0.5]]);
            }
            4 => {
                // I + N + N²·(I/2 + N/6 + N²/24).
                let n2 = p.mul(0, 0, None);
                let l = p.lin(&[I, N, V(n2)], &[&[0.5, 1.0 / 6.0, 1.0 / 24.0], &[1.0, 1.0, 0.0]]);
                p.mul(n2, l, Some(l + 1));
            }
            8 => {
                // BBC (2019), eq. for y_8: N⁴ = N²(x1·N + x2·N²),
                // N⁸ = (x3·N² + N⁴)(x4·I + x5·N + x6·N² + x7·N⁴), T_8 = I + N + y2·N² + N⁸.
                let r = 177f64.sqrt();
                let x3 = 2.0 / 3.0;
                let x1 = x3 * (1.0 + r) / 88.0;
                let x2 = x3 * (1.0 + r) / 352.0;
                let x4 = (-271.0 + 29.0 * r) / (315.0 * x3);
                let x5 = (-11.0 + 11.0 * r) / (1260.0 * x3);
                let x6 = (-99.0 + 11.0 * r) / (5040.0 * x3);
                // x3² here: libtorch 2.13's T_8 divides by x3 alone, which leaves
                // its polynomial Taylor's only to degree 4 (e^0.5·I is off by 3e-5
                // in f32); the test below expands this one.
                let x7 = (89.0 - r) / (5040.0 * x3 * x3);
                let y2 = (857.0 - 58.0 * r) / 630.0;
                let n2 = p.mul(0, 0, None);
                let l1 = p.lin(&[N, V(n2)], &[&[x1, x2]]);
                let n4 = p.mul(n2, l1, None);
                let l = p.lin(&[I, N, V(n2), V(n4)], &[&[0.0, 0.0, x3, 1.0], &[x4, x5, x6, x7], &[1.0, 1.0, y2, 0.0]]);
                p.mul(l, l + 1, Some(l + 2));
            }
            12 => {
                // BBC (2019), y_12: B_i over (I, N, N², N³); N⁶' = B_2 + B_3²,
                // T_12 = B_0 + (B_1 + N⁶')·N⁶'.
                let n2 = p.mul(0, 0, None);
                let n3 = p.mul(n2, 0, None);
                let b = p.lin(&[I, N, V(n2), V(n3)], &T12);
                let a6 = p.mul(b + 3, b + 3, Some(b + 2));
                let s = p.lin(&[V(b + 1), V(a6)], &[&[1.0, 1.0]]);
                p.mul(s, a6, Some(b));
            }
            18 => {
                // BBC (2019), y_18: B_i over (I, N, N², N³, N⁶); A_9 = B_0·B_4 + B_3,
                // T_18 = B_1 + (B_2 + A_9)·A_9.
                let n2 = p.mul(0, 0, None);
                let n3 = p.mul(n2, 0, None);
                let n6 = p.mul(n3, n3, None);
                let b = p.lin(&[I, N, V(n2), V(n3), V(n6)], &T18);
                let a9 = p.mul(b, b + 4, Some(b + 3));
                let s = p.lin(&[V(b + 2), V(a9)], &[&[1.0, 1.0]]);
                p.mul(s, a9, Some(b + 1));
            }
            d => unreachable!("no Taylor program of degree {d}"),
        }
        p
    }

    /// Runs the program on N = `n` `[C,C]`: every value (`keep`) or only the result.
    pub fn run(&self, n: &Tensor, keep: bool) -> Result<Vec<Option<Tensor>>> {
        let last_use = self.last_uses();
        let mut values: Vec<Option<Tensor>> = vec![Some(n.shallow_clone())];
        for (k, op) in self.ops.iter().enumerate() {
            match op {
                Op::Lin { inputs, rows } => {
                    let given = operands(inputs, |i| needed(&values, i).map(Some))?;
                    let identity = inputs.iter().position(|s| *s == Src::I);
                    for out in combine(n, &given, rows, identity)? {
                        values.push(Some(out));
                    }
                }
                Op::Mul { a, b, plus } => {
                    let (x, y) = (needed(&values, *a)?, needed(&values, *b)?);
                    values.push(Some(match plus {
                        Some(c) => needed(&values, *c)?.f_addmm(&x, &y)?,
                        None => x.f_matmul(&y)?,
                    }));
                }
            }
            if !keep {
                for (i, v) in values.iter_mut().enumerate() {
                    if last_use[i].is_some_and(|u| u <= k) {
                        *v = None;
                    }
                }
            }
        }
        Ok(values)
    }

    /// The derivative of the result along E = `e` at the `values` of [`run`](Self::run) (kept).
    pub fn push(&self, values: &[Option<Tensor>], e: &Tensor) -> Result<Tensor> {
        let value = |i: usize| needed(values, i);
        // d(value); None is 0 (the identity's, and its combinations').
        let mut d: Vec<Option<Tensor>> = vec![Some(e.shallow_clone())];
        for op in &self.ops {
            match op {
                Op::Lin { inputs, rows } => {
                    let given = operands(inputs, |i| Ok(d[i].as_ref().map(Tensor::shallow_clone)))?;
                    if given.is_empty() {
                        d.extend(rows.iter().map(|_| None));
                    } else {
                        d.extend(combine(e, &given, rows, None)?.into_iter().map(Some));
                    }
                }
                Op::Mul { a, b, plus } => {
                    let mut out = plus.and_then(|c| d[c].as_ref().map(Tensor::shallow_clone));
                    if let Some(da) = &d[*a] {
                        out = Some(match out {
                            Some(acc) => acc.f_addmm(da, &value(*b)?)?,
                            None => da.f_matmul(&value(*b)?)?,
                        });
                    }
                    if let Some(db) = &d[*b] {
                        out = Some(match out {
                            Some(acc) => acc.f_addmm(&value(*a)?, db)?,
                            None => value(*a)?.f_matmul(db)?,
                        });
                    }
                    d.push(out);
                }
            }
        }
        Ok(match d.pop().flatten() {
            Some(t) => t,
            None => e.f_zeros_like()?,
        })
    }

    /// For each value, the last op that reads it (`None`: none does).
    fn last_uses(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.values];
        let read = |i: usize, k: usize, last: &mut Vec<Option<usize>>| last[i] = Some(k);
        for (k, op) in self.ops.iter().enumerate() {
            match op {
                Op::Lin { inputs, .. } => {
                    for s in inputs {
                        if let Src::V(i) = s {
                            read(*i, k, &mut last);
                        }
                    }
                }
                Op::Mul { a, b, plus } => {
                    read(*a, k, &mut last);
                    read(*b, k, &mut last);
                    if let Some(c) = plus {
                        read(*c, k, &mut last);
                    }
                }
            }
        }
        last
    }
}

/// Value `i`, which must still be held: every value is, after
/// [`Program::run`] with `keep`; without it, until its last use.
fn needed(values: &[Option<Tensor>], i: usize) -> Result<Tensor> {
    match values.get(i) {
        Some(Some(t)) => Ok(t.shallow_clone()),
        _ => Err(crate::Error::invalid("taylor program", format!("value {i} is not held (run it with keep)"))),
    }
}

/// The operands of a combination that are values, as (column, tensor), with
/// `pick` giving each value's tensor (`None`: zero, left out); I is left out.
fn operands(inputs: &[Src], pick: impl Fn(usize) -> Result<Option<Tensor>>) -> Result<Vec<(usize, Tensor)>> {
    let mut given = Vec::with_capacity(inputs.len());
    for (j, s) in inputs.iter().enumerate() {
        if let Src::V(i) = s {
            if let Some(t) = pick(*i)? {
                given.push((j, t));
            }
        }
    }
    Ok(given)
}

/// The rows of Σ_j rows[r][j]·x_j over the `given` (column j, x_j), plus
/// rows[r][identity]·I: one pass over the inputs for all rows (a [R,J] by
/// [J,C²] product) when there are several, elementwise otherwise.
fn combine(
    like: &Tensor,
    given: &[(usize, Tensor)],
    rows: &[Vec<f64>],
    identity: Option<usize>,
) -> Result<Vec<Tensor>> {
    let c = like.size()[0];
    let mut outs = Vec::with_capacity(rows.len());
    if given.len() >= 3 && rows.len() >= 2 {
        let stack = Tensor::f_stack(&given.iter().map(|(_, t)| t.shallow_clone()).collect::<Vec<_>>(), 0)?
            .f_reshape([given.len() as i64, c * c])?;
        let coef: Vec<f64> = rows.iter().flat_map(|row| given.iter().map(|(j, _)| row[*j])).collect();
        let coef = Tensor::f_from_slice(&coef)?
            .f_reshape([rows.len() as i64, given.len() as i64])?
            .f_to_kind(like.kind())?
            .f_to_device(like.device())?;
        let all = coef.f_mm(&stack)?.f_reshape([rows.len() as i64, c, c])?;
        for r in 0..rows.len() {
            outs.push(all.f_get(r as i64)?);
        }
    } else {
        for row in rows {
            let mut acc: Option<Tensor> = None;
            for (j, t) in given {
                let w = row[*j];
                if w == 0.0 {
                    continue;
                }
                acc = Some(match acc {
                    // The first term: a new tensor (never an input's storage).
                    None => t.f_mul_scalar(w)?,
                    Some(mut acc) => {
                        if w == 1.0 {
                            let _ = acc.f_add_(t)?;
                        } else {
                            let _ = acc.f_add_(&t.f_mul_scalar(w)?)?;
                        }
                        acc
                    }
                });
            }
            outs.push(match acc {
                Some(t) => t,
                None => like.f_zeros_like()?,
            });
        }
    }
    if let Some(i) = identity {
        for (out, row) in outs.iter_mut().zip(rows) {
            if row[i] != 0.0 {
                // A view: the in-place add writes into `out`.
                let mut diagonal = out.f_diagonal(0, 0, 1)?;
                let _ = diagonal.f_add_scalar_(row[i])?;
            }
        }
    }
    Ok(outs)
}

/// The degrees with a program and each one's products (checked against the
/// programs by the tests), so that planning builds no program.
pub(crate) const DEGREES: [(usize, usize); 6] = [(1, 0), (2, 1), (4, 2), (8, 3), (12, 4), (18, 5)];

/// Largest ‖N‖₂ at which degree `m`'s truncation, x^m/m!, stays below `unit`.
pub(crate) fn reach(m: usize, unit: f64) -> f64 {
    let factorial: f64 = (1..=m).map(|i| i as f64).product();
    (factorial * unit).powf(1.0 / m as f64)
}

/// BBC's y_12 coefficients: row i of B_i over (I, N, N², N³), with the paper's digits.
#[allow(clippy::excessive_precision)]
const T12: [&[f64]; 4] = [
    &[9.0198e-16, 0.46932117595418237389, -0.20099424927047284052, -0.04623946134063071740],
    &[5.31597895759871264183, 1.19926790417132231573, 0.01179296240992997031, 0.01108844528519167989],
    &[0.18188869982170434744, 0.05502798439925399070, 0.09351590770535414968, 0.00610700528898058230],
    &[-2.0861320e-13, -0.13181061013830184015, -0.02027855540589259079, -0.00675951846863086359],
];

/// BBC's y_18 coefficients: row i of B_i over (I, N, N², N³, N⁶), with the paper's digits.
#[allow(clippy::excessive_precision)]
const T18: [&[f64]; 5] = [
    &[0.0, -1.00365581030144618291e-01, -8.02924648241156932449e-03, -8.92138498045729985177e-04, 0.0],
    &[
        0.0,
        3.97849749499645077844e-01,
        1.36783778460411720168e+00,
        4.98289622525382669416e-01,
        -6.37898194594723280150e-04,
    ],
    &[
        -1.09676396052962061844e+01,
        1.68015813878906206114e+00,
        5.71779846478865511061e-02,
        -6.98210122488052056106e-03,
        3.34975017086070470649e-05,
    ],
    &[
        -9.04316832390810593223e-02,
        -6.76404519071381882256e-02,
        6.75961301770459654925e-02,
        2.95552570429315521194e-02,
        -1.39180257516060693404e-05,
    ],
    &[0.0, 0.0, -9.23364619367118555360e-02, -1.69364939002081722752e-02, -1.40086798182036094347e-05],
];

/// 1/k!.
#[cfg(test)]
fn inverse_factorial(k: usize) -> f64 {
    (1..=k).fold(1.0, |c, i| c / i as f64)
}

/// The program as a polynomial in one variable: coefficients of x⁰, x¹, ….
#[cfg(test)]
fn expand(p: &Program) -> Vec<f64> {
    fn add(a: &mut Vec<f64>, b: &[f64], c: f64) {
        if a.len() < b.len() {
            a.resize(b.len(), 0.0);
        }
        for (x, y) in a.iter_mut().zip(b) {
            *x += c * y;
        }
    }
    let mut values: Vec<Vec<f64>> = vec![vec![0.0, 1.0]];
    for op in &p.ops {
        match op {
            Op::Lin { inputs, rows } => {
                for row in rows {
                    let mut out = Vec::new();
                    for (s, c) in inputs.iter().zip(row) {
                        match s {
                            Src::I => add(&mut out, &[1.0], *c),
                            Src::V(i) => add(&mut out, &values[*i].clone(), *c),
                        }
                    }
                    values.push(out);
                }
            }
            Op::Mul { a, b, plus } => {
                let (x, y) = (&values[*a], &values[*b]);
                let mut out = vec![0.0; x.len() + y.len() - 1];
                for (i, xi) in x.iter().enumerate() {
                    for (j, yj) in y.iter().enumerate() {
                        out[i + j] += xi * yj;
                    }
                }
                if let Some(c) = plus {
                    add(&mut out, &values[*c].clone(), 1.0);
                }
                values.push(out);
            }
        }
    }
    let mut out = values.pop().unwrap_or_default();
    // Zero coefficients times zero ones leave exact zeros at the top.
    while out.len() > 1 && out.last() == Some(&0.0) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_is_taylor_to_its_degree_with_the_products_claimed() {
        for (m, products) in &DEGREES {
            let p = Program::taylor(*m);
            assert_eq!(p.products(), *products, "T_{m}");
            let poly = expand(&p);
            assert_eq!(poly.len(), m + 1, "T_{m} has degree {m}");
            // Each coefficient's error, weighed at the f32 reach, far below f32's unit.
            let x = reach(*m, 2f64.powi(-24));
            for (k, got) in poly.iter().enumerate() {
                let want = inverse_factorial(k);
                let err = (got - want).abs() * x.powi(k as i32);
                assert!(err < 1e-13, "T_{m}: x^{k}: {got:e} vs 1/{k}! = {want:e}");
            }
        }
    }

    #[test]
    fn the_programs_and_their_derivatives_match_libtorch_in_f64() {
        let c = 24;
        let base = Tensor::randn([c, c], (Kind::Double, tch::Device::Cpu)) / (c as f64).sqrt();
        let e = Tensor::randn([c, c], (Kind::Double, tch::Device::Cpu));
        for (m, scale) in [(1, 1e-9), (2, 1e-5), (4, 0.02), (8, 0.3), (12, 0.8), (18, 1.5)] {
            let n = &base * scale;
            let p = Program::taylor(m);
            let values = p.run(&n, true).unwrap();
            let got = values[p.result()].as_ref().unwrap().shallow_clone();
            let want = n.linalg_matrix_exp();
            // ‖base‖₂ ≈ 2: the truncation is about (2.2·scale)^(m+1)/(m+1)!.
            let err = (&got - &want).abs().max().double_value(&[]);
            let bound = 1e-12 + 10.0 * (2.2 * scale).powi(m as i32 + 1) * inverse_factorial(m + 1);
            assert!(err < bound, "T_{m} at scale {scale}: |T − exp| = {err:e}");
            // The derivative along e against autograd through matrix_exp's own derivative.
            let leaf = n.detach().set_requires_grad(true);
            let g = Tensor::randn([c, c], (Kind::Double, tch::Device::Cpu));
            (leaf.linalg_matrix_exp() * &g).sum(Kind::Double).backward();
            let l = p.push(&values, &e).unwrap();
            // <L(N, E), G> = <E, L(Nᵀ, G)> = <E, ∇>.
            let lhs = (&l * &g).sum(Kind::Double).double_value(&[]);
            let rhs = (&e * leaf.grad()).sum(Kind::Double).double_value(&[]);
            // The derivative's truncation: about (2.2·scale)^m/m! times ‖E‖_F·‖G‖_F.
            let sizes = e.norm().double_value(&[]) * g.norm().double_value(&[]);
            let dbound = 1e-12 * sizes + 10.0 * (2.2 * scale).powi(m as i32) * inverse_factorial(m) * sizes;
            assert!((lhs - rhs).abs() <= dbound, "T_{m}: {lhs} vs {rhs} (bound {dbound:e})");
            eprintln!("T_{m} at {scale}: |T − exp| {err:.1e} (bound {bound:.1e}); <L, G> {lhs:.12} vs {rhs:.12}");
        }
    }

    #[test]
    fn a_value_only_run_keeps_only_the_result() {
        let n = Tensor::randn([8, 8], (Kind::Double, tch::Device::Cpu)) * 0.1;
        let p = Program::taylor(18).square(2);
        let kept = p.run(&n, true).unwrap();
        let lean = p.run(&n, false).unwrap();
        assert!(lean.iter().rev().skip(1).all(Option::is_none));
        let (a, b) = (kept[p.result()].as_ref().unwrap(), lean[p.result()].as_ref().unwrap());
        assert_eq!(Vec::<f64>::try_from(a.reshape([-1])).unwrap(), Vec::<f64>::try_from(b.reshape([-1])).unwrap());
    }

    #[test]
    fn reach_is_where_the_truncation_meets_the_unit() {
        for (m, _) in DEGREES {
            let x = reach(m, 2f64.powi(-24));
            let t = x.powi(m as i32) * inverse_factorial(m);
            assert!((t / 2f64.powi(-24) - 1.0).abs() < 1e-9, "degree {m}");
        }
        assert!((reach(12, 2f64.powi(-24)) - 1.32).abs() < 0.01);
        assert!((reach(18, 2f64.powi(-24)) - 3.0).abs() < 0.01);
    }
}
