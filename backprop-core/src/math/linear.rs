//! A fully connected layer, PyTorch's `nn.Linear`, with the kernels the generated code calls.

use nalgebra::{SMatrix, SVector};
use rand::Rng;

use crate::gemm;
#[cfg(feature = "alloc")]
use crate::heap::Heap;
use crate::heap::InPlace;
use crate::scalar::{constant, Scalar, SupersetOf};
use crate::sizes;

/// A fully connected layer from `IN` to `OUT` units: `z = weight · x + bias`.
///
/// `weight` is stored `[out][in]` as in PyTorch, so `weight[(i, j)]` is PyTorch's `weight[i][j]`.
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
#[repr(C)]
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

    /// The backward kernel into the previous layer: writes `delta_in = weightᵀ · delta`.
    #[inline]
    pub fn propagate<const B: usize>(
        &self,
        delta: &SMatrix<T, OUT, B>,
        delta_in: &mut SMatrix<T, IN, B>,
    ) {
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
        if Self::LARGE {
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
            let mut samples = delta.column_iter().zip(input.column_iter());
            let Some((first_delta, first_input)) = samples.next() else {
                self.weight.fill(T::zero());
                return;
            };
            self.weight
                .ger(T::one(), &first_delta, &first_input, T::zero());
            for (delta, input) in samples {
                self.weight.ger(T::one(), &delta, &input, T::one());
            }
        }
    }
}

impl<T: Scalar, const IN: usize, const OUT: usize> Linear<T, IN, OUT> {
    /// The entries [`Linear::set_gradient`] writes into `weight`, bit for bit, handed to
    /// `f(offset, values)` a run of consecutive column-major entries at a time (`offset` is the
    /// first one's index) instead of written. Every entry is handed over once.
    #[inline]
    pub fn weight_gradient_chunks<const B: usize>(
        delta: &SMatrix<T, OUT, B>,
        input: &SMatrix<T, IN, B>,
        mut f: impl FnMut(usize, &[T]),
    ) {
        if Self::LARGE {
            gemm::multiply_transposed_chunks(OUT, IN, B, delta.as_slice(), input.as_slice(), f);
            return;
        }
        let mut scratch = Self::zeros();
        scratch.set_gradient(delta, input);
        f(0, scratch.weight.as_slice());
    }

    /// The bias gradient [`Linear::set_gradient`] writes, bit for bit: the sum of `delta`'s
    /// columns.
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
