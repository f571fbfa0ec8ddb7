//! Criterion benchmarks of the simulator (targets):
//!
//! - population establishments per wall second with modelled TLS (target
//!   ≥ 100 000 on one core): `run_population` over the `seed-telemetry`
//!   profile, every world raced under all three policies, the oracle
//!   computed from the `hev3` run; each policy's run is one establishment;
//! - time compression on the scenario library (target ≥ 1000×): every
//!   scenario under its own policy, virtual seconds simulated per wall
//!   second.
//!
//! Each bench prints its figure once before criterion's timing, measured
//! over a fixed amount of work, so the README's numbers can be read off
//! directly: `cargo bench -p taps-benches --bench sim -- --warm-up-time 1
//! --measurement-time 3`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant as WallInstant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use taps_core::Instant;
use taps_sim::population::run_population;
use taps_sim::{RunOptions, Scenario, World};

const WORLDS: usize = 1000;

fn library() -> Vec<Scenario> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| Scenario::load(f).expect("the library parses"))
        .collect()
}

/// Runs the whole library once; returns the virtual time simulated.
fn run_library(world: &mut World, library: &[Scenario]) -> std::time::Duration {
    let mut virtual_time = std::time::Duration::ZERO;
    for sc in library {
        let r = world.run(sc, RunOptions::of(sc)).expect("runs");
        virtual_time += r.end - Instant::ZERO;
        black_box(&r);
    }
    virtual_time
}

fn benches(c: &mut Criterion) {
    // Population: one figure over 20 000 worlds (60 000 establishments).
    let report = run_population("seed-telemetry", 20_000, 1).expect("population runs");
    println!(
        "population: {} establishments in {:.1} ms: {:.0} establishments per second",
        report.establishments,
        report.wall.as_secs_f64() * 1e3,
        report.establishments as f64 / report.wall.as_secs_f64()
    );

    // Library: one figure over 200 passes.
    let lib = library();
    let mut world = World::new();
    let start = WallInstant::now();
    let mut simulated = std::time::Duration::ZERO;
    for _ in 0..200 {
        simulated += run_library(&mut world, &lib);
    }
    let wall = start.elapsed();
    println!(
        "scenario library ({} scenarios): {:.1} virtual s in {:.1} ms wall: {:.0}× time compression",
        lib.len(),
        simulated.as_secs_f64(),
        wall.as_secs_f64() * 1e3,
        simulated.as_secs_f64() / wall.as_secs_f64()
    );

    let mut g = c.benchmark_group("population");
    g.throughput(Throughput::Elements(
        (WORLDS * taps_sim::POLICIES.len()) as u64,
    ));
    g.bench_function("seed-telemetry, 1000 worlds × 3 policies + oracle", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            black_box(run_population("seed-telemetry", WORLDS, seed).expect("runs"))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("library");
    let per_pass = run_library(&mut world, &lib);
    println!(
        "one library pass simulates {:.3} virtual s",
        per_pass.as_secs_f64()
    );
    g.bench_function("every scenario once, its own policy", |b| {
        b.iter(|| black_box(run_library(&mut world, &lib)))
    });
    g.finish();
}

criterion_group!(sim, benches);
criterion_main!(sim);
