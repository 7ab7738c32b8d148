//! Unescaped `"`, `<`, `>` in request targets are served as Prometheus (Go)
//! serves them, on a real listener, including on a keep-alive connection
//! after a form body that contains quotes.

mod common;

use common::*;

#[tokio::test]
async fn unescaped_quotes_in_urls_are_accepted() {
    let form = "query=up%7Bjob%3D%22node%22%7D&time=\"600\"";
    let out = raw_exchange(format!(
        "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}\
         GET /api/v1/query?query=up{{job=\"node\"}}&time=600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        form.len(),
        form
    ))
    .await;
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
}
