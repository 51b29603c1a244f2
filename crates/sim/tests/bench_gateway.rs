//! `jembatan bench gateway` runs end to end at a tiny size: every shop seeds through the API,
//! every route answers 200 under both load shapes, and the report names them all (on SQLite, or
//! on PostgreSQL when `JEMBATAN_TEST_DATABASE_URL` is set).

use std::time::Duration;

use jembatan_sim::bench_gateway::{GatewayBenchOptions, gateway};
use jembatan_store::testing::DATABASE_URL_VAR;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_bench_measures_every_route_without_an_error() {
    let options = GatewayBenchOptions {
        database_url: std::env::var(DATABASE_URL_VAR).ok().filter(|u| !u.is_empty()),
        legacy_database_url: None,
        phase: Duration::from_millis(150),
        concurrency: 2,
        rate_per_s: 40,
        orders_per_shop: 2,
    };
    let report = gateway(&options).await.unwrap();
    assert_eq!(report.errors(), 0);
    for comparison in [&report.read, &report.write] {
        for route in [&comparison.legacy_shop, &comparison.core_shop, &comparison.baseline] {
            assert!(route.open.requests > 0 && route.closed.requests > 0, "{} was not measured", route.name);
        }
    }
    let rendered = report.render(&options);
    assert!(rendered.contains("GET /social/v1/orders/{id} (core shop)"), "{rendered}");
    assert!(rendered.contains("added by the gateway"), "{rendered}");
}
