//! Stack benchmarks: framed message round trips between two machines
//! in memory (target ≥ 2 million 64-byte messages per second per core), and
//! a TLS establishment through the core against bare rustls (target ratio
//! ≤ 1.10).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use taps_benches::stack::{Pair, Pki};

const BATCH: usize = 1000;

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("framed messages");
    for size in [64usize, 16 * 1024] {
        let mut pair = Pair::framed();
        assert_eq!(pair.round(BATCH, size), BATCH);
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function(format!("{size}-byte messages, batches of {BATCH}"), |b| {
            b.iter(|| black_box(pair.round(BATCH, size)))
        });
    }
    group.finish();

    let pki = Pki::new();
    let (client, server) = pki.bare_configs();
    let mut tls = c.benchmark_group("TLS 1.3 establishment");
    let mut machines = pki.machines();
    tls.bench_function("through the core (2 machines, race, stacks)", |b| {
        b.iter(|| machines.establish())
    });
    tls.bench_function("bare rustls", |b| {
        b.iter(|| pki.establish_bare(&client, &server))
    });
    tls.finish();

    // The ratio, measured side by side in this run.
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..300 {
            f();
        }
        start.elapsed().as_secs_f64() / 300.0
    };
    let (mut core, mut bare) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let mut m = pki.machines();
        let start = Instant::now();
        for _ in 0..300 {
            m.establish();
        }
        core = core.min(start.elapsed().as_secs_f64() / 300.0);
        bare = bare.min(time(&|| pki.establish_bare(&client, &server)));
    }
    println!(
        "TLS establishment: core {:.1} µs, bare rustls {:.1} µs, ratio {:.3}",
        core * 1e6,
        bare * 1e6,
        core / bare
    );
}

criterion_group!(stack, benches);
criterion_main!(stack);
