//! A fully connected layer, PyTorch's `nn.Linear`, with the kernels the generated code calls.

use nalgebra::{SMatrix, SVector};
use rand::Rng;

use crate::gemm;
#[cfg(feature = "alloc")]
use crate::heap::Heap;
use crate::heap::InPlace;
use crate::kernels;
use crate::scalar::{constant, Scalar, SupersetOf};
use crate::sizes;

/// A fully connected layer from `IN` to `OUT` units: `z = weight · x + bias`.
///
/// `weight` is stored `[out][in]` as in PyTorch, so `weight[(i, j)]` is PyTorch's `weight[i][j]`.
///
/// On x86-64 a layer is aligned to 64 bytes (a cache line), so its weight starts on one wherever
/// the network lives: a vector load of a weight column then never straddles two lines. Left to
/// `f32`'s 4-byte alignment, the stack's random placement decided it, and on a Zen 2 the W2
/// benchmark's fused step took 460 ns or 380 ns from one run to the next. Elsewhere (embedded
/// targets above all) a layer keeps its scalar's alignment and no padding.
///
/// ```
/// use backprop::prelude::*;
/// use backprop::Linear;
///
/// // nn.Linear(2, 3): a 3×2 weight, written row by row as PyTorch prints it.
/// let mut layer = Linear::<f64, 2, 3>::zeros();
/// layer.weight = SMatrix::<f64, 3, 2>::new(1.0, 2.0, 0.0, -1.0, 0.5, 0.5);
/// layer.bias = SVector::<f64, 3>::new(0.0, 1.0, -1.0);
/// let x = SVector::<f64, 2>::new(2.0, 4.0);
/// // z = weight·x + bias = (2 + 8 + 0, 0 − 4 + 1, 1 + 2 − 1)
/// assert_eq!(layer.affine_value(&x), SVector::<f64, 3>::new(10.0, -3.0, 2.0));
///
/// // A generated network's fields are these layers: its forward pass is theirs, composed.
/// backprop::network! { struct Net < 2 => relu 3 => 1 > }
/// let net = Net::<f64>::init(5);
/// let hidden: &Linear<f64, 2, 3> = &net.fc1;
/// let a = hidden.affine_value(&x).map(|z| z.max(0.0));
/// assert!((net.forward(&x) - net.fc2.affine_value(&a)).norm() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[cfg_attr(target_arch = "x86_64", repr(C, align(64)))]
pub struct Linear<T: Scalar, const IN: usize, const OUT: usize> {
    /// The weight matrix, one row per output unit.
    pub weight: SMatrix<T, OUT, IN>,
    /// The bias, one entry per output unit.
    pub bias: SVector<T, OUT>,
}

impl<T: Scalar, const IN: usize, const OUT: usize> Linear<T, IN, OUT> {
    /// Whether the layer uses the register-tiled kernels of [`gemm`] ([`sizes::GEMM_WEIGHTS`]).
    const LARGE: bool = IN * OUT >= sizes::GEMM_WEIGHTS;

    /// Whether the layer's gradient is built as a value ([`sizes::TINY_BYTES`]).
    const TINY: bool = IN * OUT * core::mem::size_of::<T>() <= sizes::TINY_BYTES;

    /// Whether the weight gradient uses [`kernels::outer`] ([`sizes::MID_GRADIENT_WEIGHTS`]).
    const MID: bool = !Self::LARGE && !Self::TINY && IN * OUT >= sizes::MID_GRADIENT_WEIGHTS;

    /// Whether the forward pass and the propagation use the vector kernels compiled for this
    /// shape ([`kernels::affine_shaped`], [`kernels::propagate_shaped`]; [`sizes::MID_WEIGHTS`],
    /// 8 or more outputs).
    const MID_PRODUCTS: bool =
        !Self::LARGE && !Self::TINY && IN * OUT >= sizes::MID_WEIGHTS && OUT >= 8;

    /// Whether the fused step makes this layer's one-sample weight gradient a column at a time
    /// where it is read, `δ · x_j` ([`FusedStep::update_columns`](crate::optim::FusedStep::update_columns)):
    /// for every layer but the tiny ones (whose whole gradient is one value in registers) and the
    /// tiled ones (which sum from zero, so a `−0` product is `+0` there). For one sample
    /// [`Linear::set_gradient`] writes each entry of the others as the single product `δ_i · x_j`.
    pub const PRODUCT_COLUMNS: bool = !Self::LARGE && !Self::TINY;

    /// Whether a batch's weight gradient is made a block of inputs at a time
    /// ([`Linear::narrow_gradient`]; [`sizes::NARROW_OUTPUTS`]): a small layer with few outputs.
    const NARROW: bool = !Self::LARGE && !Self::TINY && !Self::MID && OUT < sizes::NARROW_OUTPUTS;

    /// A layer whose weights and biases are all zero.
    #[inline]
    pub fn zeros() -> Self {
        Linear {
            weight: SMatrix::zeros(),
            bias: SVector::zeros(),
        }
    }

    #[cfg(feature = "alloc")]
    /// A zeroed layer built directly on the heap, never on the stack: what the generated code
    /// uses for layers too large to keep inline (see `network!`'s storage rule).
    pub fn boxed_zeros() -> Heap<Self> {
        Heap::zeros()
    }

    /// PyTorch's default `nn.Linear` initialisation: weight then bias, each uniform in ±1/√IN.
    pub fn torch_default<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut layer = Self::zeros();
        layer.fill_torch_default(rng);
        layer
    }

    #[cfg(feature = "alloc")]
    /// [`Linear::torch_default`], built on the heap.
    pub fn boxed_torch_default<R: Rng + ?Sized>(rng: &mut R) -> Heap<Self> {
        let mut layer = Self::boxed_zeros();
        layer.fill_torch_default(rng);
        layer
    }

    /// Overwrites the layer with PyTorch's default initialisation, drawing weight then bias.
    pub fn fill_torch_default<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        let bound = if IN == 0 {
            0.0
        } else {
            1.0 / libm::sqrt(IN as f64)
        };
        let mut uniform = || {
            constant::<T>(if bound > 0.0 {
                rng.random_range(-bound..bound)
            } else {
                0.0
            })
        };
        // PyTorch fills the weight row by row ([out][in]), so draw in that order.
        for row in 0..OUT {
            for col in 0..IN {
                self.weight[(row, col)] = uniform();
            }
        }
        for entry in self.bias.iter_mut() {
            *entry = uniform();
        }
    }

    /// The same layer in another scalar type (`f32` to `f64`, say).
    pub fn cast<U: Scalar + SupersetOf<T>>(&self) -> Linear<U, IN, OUT> {
        let mut layer = Linear::zeros();
        self.cast_into(&mut layer);
        layer
    }

    #[cfg(feature = "alloc")]
    /// [`Linear::cast`], built on the heap.
    pub fn boxed_cast<U: Scalar + SupersetOf<T>>(&self) -> Heap<Linear<U, IN, OUT>> {
        let mut layer = Linear::boxed_zeros();
        self.cast_into(&mut layer);
        layer
    }

    /// Writes this layer, converted to `U`, into `out`.
    fn cast_into<U: Scalar + SupersetOf<T>>(&self, out: &mut Linear<U, IN, OUT>) {
        for (to, from) in out.weight.iter_mut().zip(self.weight.iter()) {
            *to = nalgebra::convert(*from);
        }
        for (to, from) in out.bias.iter_mut().zip(self.bias.iter()) {
            *to = nalgebra::convert(*from);
        }
    }

    /// The weight and the bias as column-major slices.
    #[inline]
    pub fn tensors(&self) -> (&[T], &[T]) {
        (self.weight.as_slice(), self.bias.as_slice())
    }

    /// The weight and the bias as writable column-major slices, borrowed together (one borrow
    /// of the layer, so it works the same through a [`Heap`] box).
    #[inline]
    pub fn tensors_mut(&mut self) -> (&mut [T], &mut [T]) {
        (self.weight.as_mut_slice(), self.bias.as_mut_slice())
    }

    /// The forward kernel: writes `z = weight · x + bias` for every column (sample) of `x`.
    #[inline]
    pub fn affine<const B: usize>(&self, x: &SMatrix<T, IN, B>, z: &mut SMatrix<T, OUT, B>) {
        if Self::MID_PRODUCTS {
            self.mid_affine(x, z);
            return;
        }
        if Self::LARGE {
            self.large_product(x, z);
        } else {
            z.gemm(T::one(), &self.weight, x, T::zero());
        }
        self.add_bias(z);
    }

    /// The forward kernel returning a new matrix: `weight · x + bias` for every column of `x`.
    #[inline]
    // Borrowing the weight keeps nalgebra from copying the whole matrix for the product.
    #[allow(clippy::op_ref)]
    pub fn affine_value<const B: usize>(&self, x: &SMatrix<T, IN, B>) -> SMatrix<T, OUT, B> {
        if Self::MID_PRODUCTS {
            let mut z = SMatrix::<T, OUT, B>::zeros();
            self.mid_affine(x, &mut z);
            return z;
        }
        let mut z = if Self::LARGE {
            let mut z = SMatrix::<T, OUT, B>::zeros();
            self.large_product(x, &mut z);
            z
        } else {
            &self.weight * x
        };
        self.add_bias(&mut z);
        z
    }

    /// `z = weight · x + bias` through [`kernels::affine_shaped`].
    #[inline]
    fn mid_affine<const B: usize>(&self, x: &SMatrix<T, IN, B>, z: &mut SMatrix<T, OUT, B>) {
        kernels::affine_shaped::<T, OUT, IN, B>(
            self.weight.as_slice(),
            self.bias.as_slice(),
            x.as_slice(),
            z.as_mut_slice(),
        );
    }

    /// `z = weight · x` through the register-tiled kernel of [`gemm`].
    #[inline]
    fn large_product<const B: usize>(&self, x: &SMatrix<T, IN, B>, z: &mut SMatrix<T, OUT, B>) {
        gemm::multiply(
            OUT,
            B,
            IN,
            self.weight.as_slice(),
            x.as_slice(),
            z.as_mut_slice(),
        );
    }

    /// Adds the bias to every column of `z`.
    #[inline]
    fn add_bias<const B: usize>(&self, z: &mut SMatrix<T, OUT, B>) {
        for mut column in z.column_iter_mut() {
            column += &self.bias;
        }
    }

    /// `self ← self + alpha · other`, weight and bias (plain SGD is `axpy(−lr, grad)`).
    #[inline]
    pub fn axpy(&mut self, alpha: T, other: &Self) {
        self.weight.zip_apply(&other.weight, |p, g| *p += alpha * g);
        self.bias.zip_apply(&other.bias, |p, g| *p += alpha * g);
    }

    /// The backward kernel into the previous layer: writes `delta_in = weightᵀ · delta`
    /// ([`kernels::propagate_shaped`] for a mid-size layer, nalgebra's product otherwise).
    #[inline]
    pub fn propagate<const B: usize>(
        &self,
        delta: &SMatrix<T, OUT, B>,
        delta_in: &mut SMatrix<T, IN, B>,
    ) {
        if Self::MID_PRODUCTS {
            kernels::propagate_shaped::<T, OUT, IN, B>(
                self.weight.as_slice(),
                delta.as_slice(),
                delta_in.as_mut_slice(),
            );
            return;
        }
        delta_in.gemm_tr(T::one(), &self.weight, delta, T::zero());
    }

    /// Writes `∂E/∂bias`, the sum of `delta`'s columns: the first sample's column written, the
    /// others added. Built as a value for a tiny layer (it stays in registers, like the weight
    /// gradient), in place otherwise.
    #[inline]
    fn set_bias_gradient<const B: usize>(&mut self, delta: &SMatrix<T, OUT, B>) {
        if B == 0 {
            self.bias.fill(T::zero());
        } else if Self::TINY {
            let mut sum = delta.column(0).into_owned();
            for k in 1..B {
                sum += delta.column(k);
            }
            self.bias = sum;
        } else {
            self.bias.copy_from(&delta.column(0));
            for k in 1..B {
                self.bias += delta.column(k);
            }
        }
    }

    /// The gradient kernel: writes this layer's gradient for the batch, `∂E/∂weight = delta · inputᵀ`
    /// and `∂E/∂bias = Σ over samples of delta`, where `delta` is ∂E/∂z. Below 4096 weights the
    /// first sample's product is written, not added to zero, so signed zeros come out as PyTorch's
    /// do (`-0` for a dead ReLU under a negative δ); the large kernel sums from zero.
    #[inline]
    pub fn set_gradient<const B: usize>(
        &mut self,
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
    ) {
        self.set_bias_gradient(delta);
        if Self::MID {
            kernels::outer(
                OUT,
                IN,
                B,
                delta.as_slice(),
                input.as_slice(),
                self.weight.as_mut_slice(),
            );
        } else if Self::LARGE {
            gemm::multiply_transposed(
                OUT,
                IN,
                B,
                delta.as_slice(),
                input.as_slice(),
                self.weight.as_mut_slice(),
            );
        } else if Self::TINY {
            // nalgebra's small product also writes the first sample's term and adds the others.
            self.weight = delta * input.transpose();
        } else {
            Self::ger_gradient(delta, input, &mut self.weight);
        }
    }

    /// The small layers' weight gradient in place, one rank-one `ger` per sample (the first
    /// sample's written, the others added), or for a narrow layer's batch the same sums by
    /// [`Linear::narrow_gradient`].
    #[inline]
    fn ger_gradient<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        weight: &mut SMatrix<T, OUT, IN>,
    ) {
        let mut samples = delta.column_iter().zip(input.column_iter());
        let Some((first_delta, first_input)) = samples.next() else {
            weight.fill(T::zero());
            return;
        };
        if Self::NARROW && B > 1 {
            Self::narrow_gradient(delta, input, weight);
            return;
        }
        weight.ger(T::one(), &first_delta, &first_input, T::zero());
        Self::add_later_samples(delta, input, weight);
    }

    /// A narrow layer's weight gradient for a batch, in [`Linear::ger_gradient`]'s bits: each
    /// entry is `x_j0 · δ_i0`, then `+ x_js · δ_is` for `s = 1, 2, …`, each product and each sum
    /// rounded, the same operations `ger` makes. Made a block of up to 16 inputs at a time, the
    /// block's sums held in a local array whose rows run along the inputs (one vector per
    /// output), and written once. With fewer outputs than a vector's lanes, one `ger` per
    /// sample was vectorised across the columns with gathers and scatters instead: W3's
    /// `128 => 10` layer took a fifth of its step (Zen 5, `perf record`).
    #[inline(always)]
    fn narrow_gradient<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        weight: &mut SMatrix<T, OUT, IN>,
    ) {
        let (delta, input, weight) = (delta.as_slice(), input.as_slice(), weight.as_mut_slice());
        let mut j0 = 0;
        while j0 + 16 <= IN {
            Self::narrow_block::<16>(B, delta, input, weight, j0);
            j0 += 16;
        }
        // The rest (fewer than 16) in blocks of 8, 4, 2 and 1.
        if j0 + 8 <= IN {
            Self::narrow_block::<8>(B, delta, input, weight, j0);
            j0 += 8;
        }
        if j0 + 4 <= IN {
            Self::narrow_block::<4>(B, delta, input, weight, j0);
            j0 += 4;
        }
        if j0 + 2 <= IN {
            Self::narrow_block::<2>(B, delta, input, weight, j0);
            j0 += 2;
        }
        if j0 < IN {
            Self::narrow_block::<1>(B, delta, input, weight, j0);
        }
    }

    /// Inputs `j0 .. j0 + W` of [`Linear::narrow_gradient`], over a batch of `batch ≥ 1`
    /// samples (`delta` is `OUT × batch`, `input` `IN × batch`, `weight` `OUT × IN`, all
    /// column-major).
    #[inline(always)]
    fn narrow_block<const W: usize>(
        batch: usize,
        delta: &[T],
        input: &[T],
        weight: &mut [T],
        j0: usize,
    ) {
        let inputs = |s: usize| -> &[T; W] {
            input[s * IN + j0..s * IN + j0 + W]
                .try_into()
                .expect("a block of W inputs")
        };
        let mut acc = [[T::zero(); W]; OUT];
        for (i, row) in acc.iter_mut().enumerate() {
            let scale = delta[i];
            for (acc, &x) in row.iter_mut().zip(inputs(0)) {
                *acc = x * scale;
            }
            for s in 1..batch {
                let scale = delta[s * OUT + i];
                for (acc, &x) in row.iter_mut().zip(inputs(s)) {
                    *acc += x * scale;
                }
            }
        }
        for (j, column) in weight[j0 * OUT..(j0 + W) * OUT]
            .chunks_exact_mut(OUT)
            .enumerate()
        {
            for (entry, row) in column.iter_mut().zip(&acc) {
                *entry = row[j];
            }
        }
    }

    /// Adds the terms of samples `1..B` to `weight` in sample order: the rest of the gradient
    /// after the first sample's term, as [`Linear::ger_gradient`] and
    /// [`Linear::weight_gradient_runs`] both make it.
    #[inline(always)]
    fn add_later_samples<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        weight: &mut SMatrix<T, OUT, IN>,
    ) {
        for s in 1..B {
            weight.ger(T::one(), &delta.column(s), &input.column(s), T::one());
        }
    }

    /// The weight gradient [`Linear::set_gradient`] would write into `weight`, bit for bit, handed
    /// to `f(offset, values)` a run of consecutive column-major entries at a time (`offset` is
    /// the flat index of the run's first entry) instead of written: a fused training step applies
    /// the optimizer's update to those entries inside `f`. Every entry is handed over exactly
    /// once.
    ///
    /// ```
    /// use backprop::prelude::*;
    /// use backprop::Linear;
    ///
    /// let delta = SMatrix::<f32, 32, 1>::from_fn(|i, _| i as f32 - 10.0);
    /// let input = SMatrix::<f32, 64, 1>::from_fn(|j, _| 0.5 - j as f32 / 64.0);
    /// let mut grad = Linear::<f32, 64, 32>::zeros();
    /// grad.set_gradient(&delta, &input);
    /// let mut chunks = vec![0.0f32; 64 * 32];
    /// Linear::<f32, 64, 32>::weight_gradient_chunks(&delta, &input, |offset, values| {
    ///     chunks[offset..offset + values.len()].copy_from_slice(values)
    /// });
    /// assert_eq!(chunks, grad.weight.as_slice());
    /// ```
    #[inline]
    pub fn weight_gradient_chunks<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        f: impl FnMut(usize, &[T]),
    ) {
        Self::weight_gradient_runs(delta, input, f);
    }

    /// [`Linear::weight_gradient_chunks`] handing the runs to `f`, a [`kernels::Runs`] (whose
    /// `#[inline(always)]` `run` is compiled into the vector kernels).
    #[inline(always)]
    pub fn weight_gradient_runs<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        mut f: impl kernels::Runs<T>,
    ) {
        if Self::MID {
            kernels::outer_runs(OUT, IN, B, delta.as_slice(), input.as_slice(), f);
        } else if Self::LARGE {
            gemm::multiply_transposed_runs(OUT, IN, B, delta.as_slice(), input.as_slice(), f);
        } else if Self::TINY {
            let weight: SMatrix<T, OUT, IN> = delta * input.transpose();
            f.run(0, weight.as_slice());
        } else {
            // Below MID_GRADIENT_WEIGHTS: at most 16 KiB (f64) on the stack. For one sample the
            // first sample's term made in place, as `ger_gradient` writes it (`x[j] · δ[i]`, the
            // same product), with no zeroing pass first (a `memset` a step, measured under Adam
            // on W2); a narrow layer's batch zeroes it first, small beside the batch's sums.
            let weight = if B == 0 {
                SMatrix::<T, OUT, IN>::zeros()
            } else if Self::NARROW && B > 1 {
                let mut weight = SMatrix::<T, OUT, IN>::zeros();
                Self::narrow_gradient(delta, input, &mut weight);
                weight
            } else {
                let mut weight =
                    SMatrix::<T, OUT, IN>::from_fn(|i, j| delta[(i, 0)] * input[(j, 0)]);
                Self::add_later_samples(delta, input, &mut weight);
                weight
            };
            for (run, values) in weight.as_slice().chunks(kernels::RUN).enumerate() {
                f.run(run * kernels::RUN, values);
            }
        }
    }

    /// The bias gradient [`Linear::set_gradient`] writes, bit for bit: the sum of `delta`'s
    /// columns, the first sample's column then the others added (zero for an empty batch).
    ///
    /// ```
    /// use backprop::prelude::*;
    /// use backprop::Linear;
    ///
    /// let delta = SMatrix::<f64, 2, 3>::new(1.0, 2.0, 3.0, -1.0, 0.5, 0.25);
    /// let bias = Linear::<f64, 4, 2>::bias_gradient(&delta);
    /// assert_eq!(bias, SVector::<f64, 2>::new(6.0, -0.25));
    /// ```
    #[inline]
    pub fn bias_gradient<const B: usize>(delta: &SMatrix<T, OUT, B>) -> SVector<T, OUT> {
        if B == 0 {
            return SVector::zeros();
        }
        let mut sum = delta.column(0).into_owned();
        for k in 1..B {
            sum += delta.column(k);
        }
        sum
    }
}

// SAFETY: `Linear` is `#[repr(C)]` with two fields, each a static nalgebra matrix; both are
// zeroed in place through their own `InPlace`.
unsafe impl<T: Scalar, const IN: usize, const OUT: usize> InPlace for Linear<T, IN, OUT> {
    #[inline]
    unsafe fn write_zeros(slot: *mut Self) {
        // SAFETY: the caller gives a valid slot; the fields are inside it.
        unsafe {
            InPlace::write_zeros(core::ptr::addr_of_mut!((*slot).weight));
            InPlace::write_zeros(core::ptr::addr_of_mut!((*slot).bias));
        }
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.weight.copy_from(&other.weight);
        self.bias.copy_from(&other.bias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec;

    /// Deterministic entries in (−1, 1), with exact zeros and negative δ for signed zeros.
    fn matrix<T: Scalar, const R: usize, const C: usize>(seed: u64) -> SMatrix<T, R, C> {
        let mut state = seed | 1;
        SMatrix::from_fn(|_, _| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
            constant::<T>(if (state >> 7).is_multiple_of(7) {
                0.0
            } else {
                v
            })
        })
    }

    /// Each value's bits, through `f64` (exact for `f32` and `f64`).
    fn bits<T: Scalar>(values: &[T]) -> vec::Vec<u64> {
        values
            .iter()
            .map(|&v| crate::scalar::to_f64(v).to_bits())
            .collect()
    }

    /// `weight_gradient_chunks` and `bias_gradient` give `set_gradient`'s bits, each entry once.
    fn chunks_match<T: Scalar, const IN: usize, const OUT: usize, const B: usize>() {
        let delta = matrix::<T, OUT, B>(3 + B as u64);
        let input = matrix::<T, IN, B>(5 + IN as u64);
        let mut grad = Linear::<T, IN, OUT>::zeros();
        grad.set_gradient(&delta, &input);
        let mut chunks = vec![T::zero(); IN * OUT];
        let mut handed = vec![0u32; IN * OUT];
        Linear::<T, IN, OUT>::weight_gradient_chunks(&delta, &input, |offset, values| {
            chunks[offset..offset + values.len()].copy_from_slice(values);
            for h in &mut handed[offset..offset + values.len()] {
                *h += 1;
            }
        });
        let what = std::format!("{IN} => {OUT}, batch {B}");
        assert!(handed.iter().all(|&h| h == 1), "{what}: every entry once");
        assert_eq!(
            bits(&chunks),
            bits(grad.weight.as_slice()),
            "{what}: weight"
        );
        let bias = Linear::<T, IN, OUT>::bias_gradient(&delta);
        assert_eq!(
            bits(bias.as_slice()),
            bits(grad.bias.as_slice()),
            "{what}: bias"
        );
    }

    #[test]
    fn linear_gradient_chunks_equal_set_gradient_in_every_regime() {
        // Tiny: 20 weights.
        const { assert!(Linear::<f32, 4, 5>::TINY) };
        chunks_match::<f32, 4, 5, 1>();
        chunks_match::<f32, 4, 5, 3>();
        // Small: 100 f64 weights (800 bytes), by ger for one sample, narrow for a batch.
        const { assert!(!Linear::<f64, 10, 10>::TINY && !Linear::<f64, 10, 10>::MID) };
        chunks_match::<f64, 10, 10, 1>();
        chunks_match::<f64, 10, 10, 3>();
        // Small, in the mid-size forward range: W2's second layer (narrow for a batch).
        const { assert!(!Linear::<f32, 32, 10>::MID && !Linear::<f32, 32, 10>::TINY) };
        chunks_match::<f32, 32, 10, 1>();
        chunks_match::<f64, 32, 10, 3>();
        // Small and not narrow: by ger for a batch too.
        const { assert!(!Linear::<f32, 20, 20>::NARROW && !Linear::<f32, 20, 20>::TINY) };
        chunks_match::<f32, 20, 20, 1>();
        chunks_match::<f32, 20, 20, 3>();
        // Small and narrow, over a batch: W3's second layer, and edge widths.
        const { assert!(Linear::<f32, 128, 10>::NARROW && Linear::<f64, 23, 7>::NARROW) };
        chunks_match::<f32, 128, 10, 32>();
        chunks_match::<f64, 23, 7, 3>();
        chunks_match::<f32, 31, 15, 2>();
        // Mid: W2's first layer.
        const { assert!(Linear::<f32, 64, 32>::MID && Linear::<f64, 64, 40>::MID) };
        chunks_match::<f32, 64, 32, 1>();
        chunks_match::<f32, 64, 32, 3>();
        chunks_match::<f64, 64, 40, 3>();
        chunks_match::<f32, 100, 33, 3>();
        // Large: 4096 and more.
        const { assert!(Linear::<f32, 64, 64>::LARGE && Linear::<f64, 70, 65>::LARGE) };
        chunks_match::<f32, 64, 64, 1>();
        chunks_match::<f64, 70, 65, 3>();
        // An empty batch: zeros.
        chunks_match::<f32, 64, 32, 0>();
        chunks_match::<f32, 4, 5, 0>();
    }

    /// A narrow layer's batch gradient has the bits of one nalgebra `ger` per sample.
    fn narrow_matches_ger<T: Scalar, const IN: usize, const OUT: usize, const B: usize>() {
        const { assert!(Linear::<T, IN, OUT>::NARROW) };
        let delta = matrix::<T, OUT, B>(7 + B as u64);
        let input = matrix::<T, IN, B>(9 + IN as u64);
        let mut want = SMatrix::<T, OUT, IN>::zeros();
        for s in 0..B {
            let beta = if s == 0 { T::zero() } else { T::one() };
            want.ger(T::one(), &delta.column(s), &input.column(s), beta);
        }
        let mut grad = Linear::<T, IN, OUT>::zeros();
        grad.set_gradient(&delta, &input);
        assert_eq!(
            bits(grad.weight.as_slice()),
            bits(want.as_slice()),
            "{IN} => {OUT}, batch {B}"
        );
    }

    #[test]
    fn linear_narrow_batch_gradient_has_gers_bits() {
        narrow_matches_ger::<f32, 128, 10, 32>();
        narrow_matches_ger::<f32, 31, 15, 2>();
        narrow_matches_ger::<f32, 17, 8, 5>();
        narrow_matches_ger::<f64, 23, 7, 3>();
        narrow_matches_ger::<f64, 100, 1, 4>();
    }

    #[test]
    fn linear_mid_layer_agrees_with_nalgebra() {
        // The kernels' sums in another order than nalgebra's: equal to rounding.
        let mut layer = Linear::<f64, 64, 32>::zeros();
        layer.weight = matrix(11);
        layer.bias = matrix(12);
        let x = matrix::<f64, 64, 3>(13);
        let mut z = SMatrix::<f64, 32, 3>::zeros();
        layer.affine(&x, &mut z);
        let want = layer.weight * x + layer.bias * SMatrix::<f64, 1, 3>::repeat(1.0);
        assert!((z - want).abs().max() < 1e-13);
        assert_eq!(layer.affine_value(&x), z);
        let delta = matrix::<f64, 32, 3>(14);
        let mut back = SMatrix::<f64, 64, 3>::zeros();
        layer.propagate(&delta, &mut back);
        assert!((back - layer.weight.transpose() * delta).abs().max() < 1e-13);
        let mut grad = Linear::<f64, 64, 32>::zeros();
        grad.set_gradient(&delta, &x);
        assert!((grad.weight - delta * x.transpose()).abs().max() < 1e-13);
    }
}
