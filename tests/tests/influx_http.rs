//! What the InfluxDB writer puts on the wire and how it reacts to answers a
//! real server gives under load (503 + Retry-After) or to bad data (400).
//! The answers are scripted by a plain TCP listener, because neither
//! VictoriaMetrics nor InfluxDB can be made to throttle on demand here; the
//! real round trips are in influx_victoria.rs.

use std::io::Read;
use std::time::{Duration, Instant};

use chrono::DateTime;
use strata_sdk::influx;
use strata_sdk::influx::{EncodeError, Line, Point};
use strata_tests::support::serve_script;

struct P(i64);

impl Point for P {
    const MEASUREMENT: &'static str = "m";
    fn encode(&self, line: &mut Line<'_>) -> Result<(), EncodeError> {
        line.tag("t", &"a b".to_string())?;
        line.field("v", &self.0)?;
        line.time(DateTime::from_timestamp_nanos(self.0))
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

/// Answers each incoming request with the next scripted response.
async fn script(listener: tokio::net::TcpListener, answers: Vec<&'static str>) -> Vec<Request> {
    let responses = answers.into_iter().map(String::from).collect();
    serve_script(listener, responses)
        .await
        .into_iter()
        .map(|(head, body)| Request { head, body })
        .collect()
}

const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy";
const OK: &str = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
const BAD: &str =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\nConnection: close\r\n\r\nunable to parse";

async fn writer(
    answers: Vec<&'static str>,
) -> (influx::Writer, tokio::task::JoinHandle<Vec<Request>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(script(listener, answers));
    let config = influx::WriterConfig::new(url, "my org", "b&b")
        .with_token("secret-token")
        .with_retry(strata_sdk::writer::Retry::new(
            3,
            Duration::from_millis(10),
            Duration::from_secs(5),
        ));
    (influx::Writer::new(config), server)
}

#[tokio::test]
async fn a_busy_server_is_retried_after_retry_after_with_the_same_gzip_batch() {
    let (mut w, server) = writer(vec![BUSY, OK]).await;
    w.write(&P(1)).await.unwrap();
    w.write(&P(2)).await.unwrap();
    let start = Instant::now();
    w.flush().await.expect("second attempt succeeds");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was respected"
    );
    assert_eq!((w.sent(), w.pending()), (2, 0));
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        let first = r.head.lines().next().unwrap();
        assert_eq!(
            first,
            "POST /api/v2/write?org=my+org&bucket=b%26b&precision=ns HTTP/1.1"
        );
        let head = r.head.to_ascii_lowercase();
        assert!(head.contains("authorization: token secret-token"), "{head}");
        assert!(head.contains("content-encoding: gzip"));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "m,t=a\\ b v=1i 1\nm,t=a\\ b v=2i 2\n");
    }
}

#[tokio::test]
async fn bad_data_is_split_out_of_the_batch_and_handed_back_not_retried() {
    // The whole batch is refused; its first half (point 0) goes through;
    // of the second (points 1 and 2), point 1 alone is refused, point 2 is not.
    let (mut w, server) = writer(vec![BAD, OK, BAD, BAD, OK]).await;
    for i in 0..3 {
        w.write(&P(i)).await.unwrap();
    }
    match w.flush().await {
        Err(influx::Error::Rejected {
            status,
            points,
            body,
            lines,
        }) => {
            assert_eq!((status, points), (400, 1));
            assert!(body.contains("unable"));
            assert_eq!(&lines[..], b"m,t=a\\ b v=1i 1\n");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!((w.pending(), w.sent()), (0, 2));
    let seen = server.await.unwrap();
    let bodies: Vec<String> = seen
        .iter()
        .map(|r| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&r.body[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        })
        .collect();
    assert_eq!(
        bodies,
        [
            "m,t=a\\ b v=0i 0\nm,t=a\\ b v=1i 1\nm,t=a\\ b v=2i 2\n",
            "m,t=a\\ b v=0i 0\n",
            "m,t=a\\ b v=1i 1\nm,t=a\\ b v=2i 2\n",
            "m,t=a\\ b v=1i 1\n",
            "m,t=a\\ b v=2i 2\n",
        ],
        "no line is sent again once the server took it, and no 400 is retried whole"
    );
}

#[tokio::test]
async fn a_refusal_of_every_point_hands_the_whole_batch_back() {
    const DENIED: &str =
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied";
    let (mut w, server) = writer(vec![DENIED]).await;
    for i in 0..3 {
        w.write(&P(i)).await.unwrap();
    }
    match w.flush().await {
        Err(influx::Error::Rejected {
            status,
            points,
            lines,
            ..
        }) => {
            assert_eq!((status, points), (401, 3));
            assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 3);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(w.pending(), 0);
    assert_eq!(server.await.unwrap().len(), 1, "a 401 is not split");
}

#[test]
fn the_token_is_redacted_from_debug() {
    let c = influx::WriterConfig::new("http://x", "o", "b").with_token("secret-token");
    let text = format!("{c:?}");
    assert!(
        !text.contains("secret-token") && text.contains("<redacted>"),
        "{text}"
    );
}
