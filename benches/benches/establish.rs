//! Criterion benchmarks of one whole dual-stack establishment through the
//! machine, and of the racing layer alone (targets: ≤ 5 µs and
//! ≤ 32 allocations; ≤ 0.75 µs and ≤ 16 allocations). The allocation counts
//! are printed once before the timing runs, measured with `stats_alloc`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use taps_benches::{DualStackEstablishment, race_only};
use taps_core::race::History;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn allocations(label: &str, mut f: impl FnMut()) {
    // Warm up so one-time growth (slab, queues, heap) is not counted.
    for _ in 0..16 {
        f();
    }
    const N: usize = 1000;
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        f();
    }
    let stats = region.change();
    println!(
        "{label}: {:.1} allocations per iteration",
        stats.allocations as f64 / N as f64
    );
}

fn benches(c: &mut Criterion) {
    let mut est = DualStackEstablishment::new();
    allocations("dual-stack establishment", || {
        black_box(est.run());
    });
    let history = History::default();
    allocations("race layer only", || {
        black_box(race_only(&history));
    });

    c.bench_function(
        "dual-stack establishment (machine, DNS wire, 2 attempts)",
        |b| b.iter(|| black_box(est.run())),
    );
    c.bench_function("race layer only (typed DNS, IPv6 wins)", |b| {
        b.iter(|| black_box(race_only(&history)))
    });
}

criterion_group!(establish, benches);
criterion_main!(establish);
