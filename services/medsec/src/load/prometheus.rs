//! The server's own view, when a Prometheus scraping it is named: the p99
//! of `rpc.server.call.duration` by method over the last minute, asked of
//! the Prometheus HTTP API (plain HTTP).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::report::ServerMetrics;

/// The query: the servers' p99 by method over the last minute.
pub(crate) const QUERY: &str = "histogram_quantile(0.99, sum by (le, rpc_method) \
                                (rate(rpc_server_call_duration_seconds_bucket[1m])))";

/// How long Prometheus may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the Prometheus at `base` (e.g. `http://127.0.0.1:9090`); says "not
/// reachable", with why, when it does not answer as expected.
pub(crate) async fn server_metrics(base: &str) -> ServerMetrics {
    let asked = tokio::time::timeout(TIMEOUT, query(base)).await;
    let answer = match asked {
        Ok(answer) => answer,
        Err(_) => Err(anyhow::anyhow!("no answer within {TIMEOUT:?}")),
    };
    match answer {
        Ok(p99) => ServerMetrics {
            prometheus: Some(base.to_owned()),
            reachable: true,
            note: p99
                .is_empty()
                .then(|| "Prometheus answered with no samples for the query".to_owned()),
            p99_seconds_by_method: p99,
        },
        Err(error) => ServerMetrics {
            prometheus: Some(base.to_owned()),
            reachable: false,
            note: Some(format!("not reachable: {error:#}")),
            p99_seconds_by_method: BTreeMap::new(),
        },
    }
}

async fn query(base: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let url = format!(
        "{}/api/v1/query?query={}",
        base.trim_end_matches('/'),
        percent_encode(QUERY)
    );
    let uri: http::Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(uri).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "HTTP {status}");
    let answer: serde_json::Value = serde_json::from_slice(&body).context("not JSON")?;
    parse(&answer)
}

/// The p99 of each method in a Prometheus vector answer; methods without a
/// finite value (no calls in the window) are left out.
fn parse(answer: &serde_json::Value) -> anyhow::Result<BTreeMap<String, f64>> {
    anyhow::ensure!(
        answer["status"] == "success",
        "Prometheus answered {}",
        answer["error"].as_str().unwrap_or("an error")
    );
    let results = answer["data"]["result"]
        .as_array()
        .context("no data.result in the answer")?;
    Ok(results
        .iter()
        .filter_map(|sample| {
            let method = sample["metric"]["rpc_method"].as_str()?.to_owned();
            let value: f64 = sample["value"][1].as_str()?.parse().ok()?;
            value.is_finite().then_some((method, value))
        })
        .collect())
}

/// `text` percent-encoded for a URL's query.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_a_vector_answer() {
        let answer = serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"rpc_method": "BookAppointment"}, "value": [1.0, "0.0125"]},
                {"metric": {"rpc_method": "Ping"}, "value": [1.0, "NaN"]}
            ]}
        });
        let p99 = parse(&answer).unwrap();
        assert_eq!(p99.len(), 1);
        assert!((p99["BookAppointment"] - 0.0125).abs() < 1e-9);
    }

    #[test]
    fn encodes_the_query() {
        assert_eq!(percent_encode("a b(c)[1m]"), "a%20b%28c%29%5B1m%5D");
    }

    #[tokio::test]
    async fn says_when_nobody_answers() {
        let metrics = server_metrics("http://127.0.0.1:1").await;
        assert!(!metrics.reachable);
        assert!(metrics.note.unwrap().starts_with("not reachable"));
    }
}
