//! The machine's floating-point peak: independent chains of fused multiply-adds in the widest
//! vector unit the CPU has (AVX-512, else AVX2/FMA), one thread. Each iteration is `CHAINS`
//! FMAs of `LANES` f32 lanes, 2 operations each; criterion's throughput line reads in
//! operations per second (`Gelem/s` = GFLOP/s). BENCHMARKS.md divides each workload's rate by it.
//!
//! Run with `cargo bench --bench peak`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Independent accumulators: more than latency × ports (4 × 2 on recent x86), so the FMA units
/// never wait on a result.
const CHAINS: usize = 12;
/// FMA rounds per timed call.
const ROUNDS: usize = 4096;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS, ROUNDS};
    use std::arch::x86_64::*;

    /// `ROUNDS × CHAINS` 16-lane FMAs; returns a sum so nothing is optimised away.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(seed: f32) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_9), _mm512_set1_ps(seed));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..ROUNDS {
            for value in acc.iter_mut() {
                *value = _mm512_fmadd_ps(*value, a, b);
            }
        }
        acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    /// `ROUNDS × CHAINS` 8-lane FMAs; returns a sum so nothing is optimised away.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(seed: f32) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_9), _mm256_set1_ps(seed));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..ROUNDS {
            for value in acc.iter_mut() {
                *value = _mm256_fmadd_ps(*value, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut total = 0.0;
        for value in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), value);
            total += lanes.iter().sum::<f32>();
        }
        total
    }
}

fn peak(c: &mut Criterion) {
    let mut group = c.benchmark_group("peak");
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            group.throughput(Throughput::Elements((ROUNDS * CHAINS * 16 * 2) as u64));
            // SAFETY: the CPU has AVX-512F (checked above).
            group.bench_function("fma_avx512", |b| {
                b.iter(|| unsafe { x86::avx512(black_box(1e-3)) })
            });
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            group.throughput(Throughput::Elements((ROUNDS * CHAINS * 8 * 2) as u64));
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            group.bench_function("fma_avx2", |b| {
                b.iter(|| unsafe { x86::avx2(black_box(1e-3)) })
            });
        }
    }
    // Scalar fused multiply-adds (`f32::mul_add`), the portable floor.
    group.throughput(Throughput::Elements((ROUNDS * CHAINS * 2) as u64));
    group.bench_function("fma_scalar", |b| {
        b.iter(|| {
            let mut acc = [1.0f32; CHAINS];
            let seed = black_box(1e-3);
            for _ in 0..ROUNDS {
                for value in acc.iter_mut() {
                    *value = value.mul_add(0.999_9, seed);
                }
            }
            acc.iter().sum::<f32>()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = peak
}
criterion_main!(benches);
