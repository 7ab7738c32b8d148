//! The API over Vigil's real PromQL parser and engine (`PromqlEngine`).

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use common::*;
use vigil_promql::engine::{Engine, EngineOptions};
use vigil_promql::parser::ParseOptions;
use vigil_web::*;

fn app() -> axum::Router {
    app_with(ParseOptions::default())
}

fn app_with(parse: ParseOptions) -> axum::Router {
    let storage = fixture();
    let engine = Arc::new(
        PromqlEngine::new(
            Arc::new(Engine::new(EngineOptions::default())),
            storage.clone(),
        )
        .with_parse_options(parse),
    );
    let web = Web::new(WebOptions::default(), storage, engine).unwrap();
    web.ready_flag().set_ready();
    web.router()
}

#[tokio::test]
async fn grafana_save_and_test() {
    let app = app();
    let r = post_form(&app, "/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
}

#[tokio::test]
async fn parse_errors_verbatim_with_400() {
    let app = app();
    let r = post_form(&app, "/api/v1/query", "query=sum(rate(up%5B5m%5D)&time=4").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let j = r.json();
    assert_eq!(j["errorType"], "bad_data");
    let msg = j["error"].as_str().unwrap();
    assert!(msg.starts_with("invalid parameter \"query\": 1:"), "{msg}");
    assert!(msg.contains("parse error"), "{msg}");
    let r = get(
        &app,
        "/api/v1/query_range?query=up%5B5m%5D&start=0&end=60&step=15",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
}

#[tokio::test]
async fn rate_range_query_with_go_style_interval() {
    let app = app();
    let r = post_form(
        &app,
        "/api/v1/query_range",
        "query=sum+by+(job)+(rate(http_requests_total%5B1m0s%5D))&start=120&end=240&step=60",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["data"]["resultType"], "matrix");
    let s = &j["data"]["result"][0];
    assert_eq!(s["metric"], json!({"job":"api"}));
    // One increment per 15 s sample: 1/15 per second.
    for p in s["values"].as_array().unwrap() {
        let v: f64 = p[1].as_str().unwrap().parse().unwrap();
        assert!((v - 1.0 / 15.0).abs() < 1e-9, "{p}");
    }
}

#[tokio::test]
async fn instant_table_query_and_metadata_with_real_parser() {
    let app = app();
    let r = get(&app, "/api/v1/query?query=up%7Bjob%3D%22node%22%7D&time=30").await;
    let res = r.json()["data"]["result"].clone();
    assert_eq!(res.as_array().unwrap().len(), 2);
    assert_eq!(res[0]["value"], json!([30, "102"]));
    let r = get(
        &app,
        "/api/v1/series?match[]=up%7Bjob%3D~%22n.*%22%7D&start=0&end=60",
    )
    .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let r = get(
        &app,
        "/api/v1/label/__name__/values?match[]=%7Bjob%3D%22api%22%7D",
    )
    .await;
    assert_eq!(r.json()["data"], json!(["http_requests_total"]));
    let r = get(
        &app,
        "/api/v1/format_query?query=sum(rate(up%5B5m%5D))by(job)",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json()["data"].as_str().unwrap().contains("sum by (job)"),
        "{}",
        r.text()
    );
    let r = get(
        &app,
        "/api/v1/query_exemplars?query=rate(up%5B5m%5D)&start=0.123&end=60.456",
    )
    .await;
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
}

#[tokio::test]
async fn experimental_functions_only_when_enabled() {
    let q = "/api/v1/query?query=sort_by_label(vector(1)%2C%22a%22)&time=4";
    let r = get(&app(), q).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text(),
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error: function \"sort_by_label\" is not enabled"}"#
    );
    let r = get(&app_with(ParseOptions::all()), q).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[4,"1"]}]}}"#
    );
}
