//! Calls from one service of the suite to another: through a network
//! channel with this service's client certificate when the peer runs in
//! another process, or straight into the peer's server in this process
//! (still through its authorisation layer, as the same service principal).
//! Either way each call has a deadline, is retried a bounded number of
//! times when the peer is unavailable, and stops being tried for a while
//! when the peer keeps failing (a circuit breaker): tower layers around the
//! typed call ([`resilient`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tower::retry::RetryLayer;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder};

use crate::auth::{Credential, Principal, Role};
use crate::config::PeerSettings;

/// A typed call to a peer with its deadline, retries and breaker.
pub type Lookup<Req, Res> = BoxCloneSyncService<Req, Res, Status>;

/// Wraps `call` (one attempt of a typed RPC) with the deadline, the
/// bounded retries and the circuit breaker of `settings`; `peer` names it
/// in errors and logs.
pub fn resilient<Req, Res, F, Fut>(
    peer: &'static str,
    settings: &PeerSettings,
    call: F,
) -> Lookup<Req, Res>
where
    Req: Clone + Send + Sync + 'static,
    Res: Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Res, Status>> + Send + 'static,
{
    let deadline = Duration::from_millis(settings.timeout_millis.max(1));
    let attempt = tower::service_fn(move |request: Req| {
        let call = call.clone();
        async move {
            match tokio::time::timeout(deadline, call(request)).await {
                Ok(answer) => answer,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "{peer} did not answer within {deadline:?}"
                ))),
            }
        }
    });
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(peer, settings))
        .layer(RetryLayer::new(Retries {
            left: settings.retries,
            wait: Duration::from_millis(settings.retry_backoff_millis.max(1)),
        }))
        .service(attempt);
    BoxCloneSyncService::new(service)
}

/// Whether another attempt may succeed where this one failed.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
    )
}

/// Retries of one call: at most `left` more, waiting `wait` then twice as
/// long each time.
#[derive(Debug, Clone)]
struct Retries {
    left: u32,
    wait: Duration,
}

impl<Req: Clone, Res> tower::retry::Policy<Req, Res, Status> for Retries {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Req,
        result: &mut Result<Res, Status>,
    ) -> Option<Self::Future> {
        match result {
            Err(status) if self.left > 0 && retryable(status) => {
                self.left -= 1;
                let wait = self.wait;
                self.wait = self.wait.saturating_mul(2);
                Some(tokio::time::sleep(wait))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// Opens after `failures` calls in a row failed with a retryable status:
/// for `open_for` every call fails at once with UNAVAILABLE; then one call
/// is let through, and its outcome closes or reopens the breaker.
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    peer: &'static str,
    failures: u32,
    open_for: Duration,
    state: Arc<Mutex<BreakerState>>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failed_in_a_row: u32,
    open_until: Option<Instant>,
}

impl BreakerLayer {
    pub fn new(peer: &'static str, settings: &PeerSettings) -> Self {
        Self {
            peer,
            failures: settings.breaker_failures.max(1),
            open_for: Duration::from_secs(settings.breaker_open_secs),
            state: Arc::default(),
        }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Breaker<S> {
        Breaker {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`BreakerLayer`].
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    layer: BreakerLayer,
}

impl<S, Req> Service<Req> for Breaker<S>
where
    S: Service<Req, Error = Status>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = Status;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let layer = self.layer.clone();
        {
            let state = layer
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(until) = state.open_until
                && Instant::now() < until
            {
                let peer = layer.peer;
                return Box::pin(async move {
                    Err(Status::unavailable(format!(
                        "{peer} is failing; calls to it are paused for a moment: retry later"
                    )))
                });
            }
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            let mut state = layer
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &answer {
                Err(status) if retryable(status) => {
                    state.failed_in_a_row = state.failed_in_a_row.saturating_add(1);
                    if state.failed_in_a_row >= layer.failures {
                        tracing::warn!(
                            peer = layer.peer,
                            failed = state.failed_in_a_row,
                            "circuit breaker open"
                        );
                        state.open_until = Some(Instant::now() + layer.open_for);
                    }
                }
                _ => {
                    state.failed_in_a_row = 0;
                    state.open_until = None;
                }
            }
            answer
        })
    }
}

/// A lazily connected channel to the peer at `url`, presenting this
/// service's client certificate when configured (`https`).
pub fn channel(url: &str, settings: &PeerSettings) -> Result<Channel, PeerError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| PeerError(format!("{url} is not a URL: {error}")))?
        .connect_timeout(Duration::from_millis(settings.timeout_millis.max(1)));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &settings.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        } else {
            tls = tls.with_webpki_roots();
        }
        match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(PeerError(
                    "peers.cert_file and peers.key_file go together".to_owned(),
                ));
            }
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|error| PeerError(format!("TLS to {url}: {error}")))?;
    }
    Ok(endpoint.connect_lazy())
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, PeerError> {
    std::fs::read(path)
        .map_err(|error| PeerError(format!("cannot read {}: {error}", path.display())))
}

/// A peer that cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach a peer service: {0}")]
pub struct PeerError(String);

/// Marks a request as made by `service` of this same process: the
/// authorisation layer takes it as that service's principal (the role
/// `service`), as it would take its client certificate over the network.
/// Only code in the process can put it on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InProcessCaller(pub &'static str);

impl InProcessCaller {
    pub(crate) fn principal(self) -> Principal {
        Principal {
            subject: format!("{}.in-process", self.0),
            roles: vec![Role::Service],
            credential: Credential::Certificate,
            purpose: None,
            reason: None,
        }
    }
}

/// Puts [`InProcessCaller`] on every request, in front of a peer's server
/// (behind its authorisation layer) served in this process.
#[derive(Debug, Clone, Copy)]
pub struct InProcessLayer(pub InProcessCaller);

impl<S> Layer<S> for InProcessLayer {
    type Service = InProcess<S>;

    fn layer(&self, inner: S) -> InProcess<S> {
        InProcess {
            inner,
            caller: self.0,
        }
    }
}

/// The service made by [`InProcessLayer`].
#[derive(Debug, Clone)]
pub struct InProcess<S> {
    inner: S,
    caller: InProcessCaller,
}

impl<S, B> Service<http::Request<B>> for InProcess<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> S::Future {
        request.extensions_mut().insert(self.caller);
        self.inner.call(request)
    }
}
