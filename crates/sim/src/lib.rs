//! Realistic data and load for Jembatan: the demo data set of `jembatan up` and the benchmarks
//! of `jembatan bench` (checkout, ledger, gateway). Everything here goes through the core's use cases
//! (or, for the benchmark, over HTTP), so demo data carries its events and audit entries like
//! any other.

pub mod bench;
pub mod bench_gateway;
pub mod bench_ledger;
pub mod bench_migrate;
pub mod bench_oversight;
pub mod demo;
pub mod invariants;
pub mod load;
pub mod seed;
