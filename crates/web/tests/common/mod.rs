//! Test scaffolding: fixture series in `vigil_model`'s in-memory store and a
//! tiny query engine that understands number literals, `a+b` of numbers and
//! plain vector selectors, which is all the HTTP layer needs to be driven.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use vigil_model::memstore::MemStorage;
use vigil_model::storage::{Queryable, VecSeries};
use vigil_model::{Labels, MatchOp, Matcher, Sample};
use vigil_web::*;

/// A deliberately small engine: `<number>`, `<number>+<number>`,
/// `"string"`, `fail` (execution error), `slow` (sleeps 2 s) and selectors
/// like `up` or `up{job="a"}` with a 5 m lookback.
pub struct TestEngine {
    pub storage: Arc<dyn Queryable>,
}

const LOOKBACK: i64 = 300_000;

fn parse_error(q: &str, pos: usize, what: &str) -> QueryError {
    let _ = q;
    QueryError {
        kind: ErrorKind::BadData,
        message: format!("1:{}: parse error: {}", pos + 1, what),
        position: Some(pos),
    }
}

pub fn parse_selector(q: &str) -> Result<Vec<Matcher>, QueryError> {
    let q = q.trim();
    let (name, rest) = match q.find('{') {
        Some(i) => (&q[..i], Some(&q[i..])),
        None => (q, None),
    };
    let mut ms = Vec::new();
    if !name.is_empty() {
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            let pos = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(0);
            return Err(parse_error(q, pos, "unexpected character"));
        }
        ms.push(Matcher::equal("__name__", name));
    }
    if let Some(body) = rest {
        let inner = body
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .ok_or_else(|| parse_error(q, q.len(), "unexpected end of input"))?;
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, i, len) = ["!=", "=~", "!~", "="]
                .iter()
                .find_map(|op| part.find(op).map(|i| (*op, i, op.len())))
                .ok_or_else(|| parse_error(q, 0, "unexpected label matcher"))?;
            let lname = part[..i].trim();
            let val = part[i + len..].trim().trim_matches('"');
            let op = match op {
                "=" => MatchOp::Equal,
                "!=" => MatchOp::NotEqual,
                "=~" => MatchOp::Regex,
                _ => MatchOp::NotRegex,
            };
            ms.push(Matcher::new(op, lname, val).map_err(|e| QueryError::bad_data(e.to_string()))?);
        }
    }
    if ms.is_empty() {
        return Err(parse_error(q, 0, "unexpected end of input"));
    }
    Ok(ms)
}

fn number(q: &str) -> Option<f64> {
    if let Ok(v) = q.trim().parse::<f64>() {
        return Some(v);
    }
    let (a, b) = q.split_once('+')?;
    Some(a.trim().parse::<f64>().ok()? + b.trim().parse::<f64>().ok()?)
}

impl TestEngine {
    fn vector_at(&self, ms: &[Matcher], t: i64) -> Result<Vec<VectorElement>, QueryError> {
        let q = self
            .storage
            .querier(t - LOOKBACK + 1, t)
            .map_err(|e| QueryError::new(ErrorKind::Internal, e.to_string()))?;
        let mut out = Vec::new();
        for s in q
            .select(None, ms)
            .map_err(|e| QueryError::new(ErrorKind::Internal, e.to_string()))?
        {
            let mut it = s.iter();
            let mut last = None;
            while let Some(p) = it
                .next()
                .map_err(|e| QueryError::new(ErrorKind::Internal, e.to_string()))?
            {
                if p.t <= t {
                    last = Some(p);
                }
            }
            if let Some(p) = last {
                out.push(VectorElement {
                    labels: s.labels().clone(),
                    t,
                    v: p.v,
                });
            }
        }
        Ok(out)
    }
}

impl QueryEngine for TestEngine {
    fn instant_query(
        &self,
        query: &str,
        time: i64,
        opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let value = if query == "fail" {
            return Err(QueryError::new(
                ErrorKind::Execution,
                "expanding series: boom",
            ));
        } else if query == "slow" {
            std::thread::sleep(std::time::Duration::from_secs(2));
            if opts.deadline.is_some_and(|d| std::time::Instant::now() > d) {
                return Err(QueryError::new(
                    ErrorKind::Timeout,
                    "query timed out in expression evaluation",
                ));
            }
            QueryValue::Scalar { t: time, v: 0.0 }
        } else if let Some(s) = query.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            QueryValue::String {
                t: time,
                s: s.to_string(),
            }
        } else if let Some(v) = number(query) {
            QueryValue::Scalar { t: time, v }
        } else {
            QueryValue::Vector(self.vector_at(&parse_selector(query)?, time)?)
        };
        let warnings = if query.contains("warn") {
            vec!["PromQL info: test warning".to_string()]
        } else {
            Vec::new()
        };
        Ok(QueryOutput {
            value,
            warnings,
            stats: SampleStats {
                total_queryable_samples: 3,
                peak_samples: 2,
            },
        })
    }

    fn range_query(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        _opts: &QueryOptions,
    ) -> Result<QueryOutput, QueryError> {
        let mut out: Vec<MatrixSeries> = Vec::new();
        let ms = if number(query).is_some() {
            None
        } else {
            Some(parse_selector(query)?)
        };
        let mut t = start;
        while t <= end {
            let elems = match &ms {
                Some(ms) => self.vector_at(ms, t)?,
                None => vec![VectorElement {
                    labels: Labels::empty(),
                    t,
                    v: number(query).unwrap_or(0.0),
                }],
            };
            for e in elems {
                match out.iter_mut().find(|s| s.labels == e.labels) {
                    Some(s) => s.samples.push(Sample::new(t, e.v)),
                    None => out.push(MatrixSeries {
                        labels: e.labels,
                        samples: vec![Sample::new(t, e.v)],
                    }),
                }
            }
            t += step;
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryOutput {
            value: QueryValue::Matrix(out),
            warnings: Vec::new(),
            stats: SampleStats::default(),
        })
    }

    fn format_query(&self, query: &str) -> Result<String, QueryError> {
        if number(query).is_some() {
            return Ok(query.replace('+', " + "));
        }
        let ms = parse_selector(query)?;
        Ok(format!("{}", ms.len()))
    }

    fn parse_metric_selector(&self, selector: &str) -> Result<Vec<Matcher>, QueryError> {
        parse_selector(selector)
    }

    fn selectors(&self, query: &str) -> Result<Vec<Vec<Matcher>>, QueryError> {
        if number(query).is_some() {
            return Ok(Vec::new());
        }
        Ok(vec![parse_selector(query)?])
    }
}

pub fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> VecSeries {
    VecSeries {
        labels: Labels::from_pairs(pairs),
        samples: samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
    }
}

/// Three series of `up` and one of `http_requests_total`, sampled every
/// 15 s from t=0 to t=600 s.
pub fn fixture() -> Arc<MemStorage> {
    let pts =
        |v: f64| -> Vec<(i64, f64)> { (0..=40).map(|i| (i * 15_000, v + i as f64)).collect() };
    Arc::new(MemStorage::from_series(vec![
        series(
            &[
                ("__name__", "up"),
                ("job", "prometheus"),
                ("instance", "localhost:9090"),
            ],
            &pts(0.0),
        ),
        series(
            &[
                ("__name__", "up"),
                ("job", "node"),
                ("instance", "localhost:9100"),
            ],
            &pts(100.0),
        ),
        series(
            &[
                ("__name__", "up"),
                ("job", "node"),
                ("instance", "localhost:9101"),
            ],
            &[(0, f64::NAN), (15_000, f64::INFINITY)],
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            &pts(0.5),
        ),
    ]))
}

pub fn web_with(opts: WebOptions) -> Web {
    let storage = fixture();
    let engine = Arc::new(TestEngine {
        storage: storage.clone(),
    });
    Web::new(opts, storage, engine).expect("valid options")
}

pub fn ready_router(opts: WebOptions) -> axum::Router {
    let web = web_with(opts);
    web.ready_flag().set_ready();
    web.router()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn call(app: &axum::Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &axum::Router, uri: &str) -> Reply {
    call(app, Request::get(uri).body(Body::empty()).expect("request")).await
}

pub async fn post_form(app: &axum::Router, uri: &str, form: &str) -> Reply {
    call(
        app,
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .expect("request"),
    )
    .await
}

/// Serves a ready default `Web` on a real 127.0.0.1 listener, writes `raw`
/// (HTTP/1.1 requests, the last with `Connection: close`) to one
/// connection, shuts the server down, and returns all that was read back.
pub async fn raw_exchange(raw: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let web = web_with(WebOptions::default());
    web.ready_flag().set_ready();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web.serve(listener, async {
        let _ = rx.await;
    }));
    let out = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    out
}
