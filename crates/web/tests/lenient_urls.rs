//! Unescaped `"`, `<`, `>` in request targets are served as Prometheus (Go)
//! serves them, on a real listener, including on a keep-alive connection
//! after a form body that contains quotes.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use vigil_web::*;

#[tokio::test]
async fn unescaped_quotes_in_urls_are_accepted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let web = web_with(WebOptions::default());
    web.ready_flag().set_ready();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web.serve(listener, async {
        let _ = rx.await;
    }));
    let out = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let form = "query=up%7Bjob%3D%22node%22%7D&time=\"600\"";
        write!(
            s,
            "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}\
             GET /api/v1/query?query=up{{job=\"node\"}}&time=600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            form.len(),
            form
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let replies: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(replies.len(), 2, "{out}");
    // The body's quotes reach the handler untouched (an invalid time).
    assert!(replies[0].starts_with("400"), "{}", replies[0]);
    assert!(
        replies[0].contains(r#"invalid parameter \"time\""#),
        "{}",
        replies[0]
    );
    // The target's quotes are escaped, so the selector parses.
    assert!(replies[1].starts_with("200 OK"), "{}", replies[1]);
    assert!(
        replies[1].contains(r#""job":"node""#) && replies[1].contains(r#""resultType":"vector""#),
        "{}",
        replies[1]
    );
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
