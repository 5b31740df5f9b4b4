//! The local HTTP+JSON API.
//!
//! Threads, no async runtime: the HTTP/1.1 front (`http`, private) runs one accept thread per
//! listener and one thread per connection, within bounds on every size, time and count a
//! client controls (see the crate README for the figures). Reads (transactions, report) go to
//! the journal through a reader connection; everything that touches devices or the host goes
//! to the lane worker over a channel. [`ROUTES`] is the route table; the OpenAPI document
//! (`openapi.json`) is tested against it.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pos_acquirer::Operation;
use pos_emv::profile_card::Profile;
use pos_hal::CardSpec;
use pos_terminal::config::ApiConfig;
use pos_terminal::inject::{InjectedFault, Injection};
use pos_terminal::journal::{Journal, Txn};
use pos_terminal::{CardEntry, Config, State, TxnRequest};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::events::Subscription;
use crate::http::{
    Answer, BodyError, Class, EventSink, Limits, Listener, Request, Response, Server,
};
use crate::worker::{Command, Current, Shared};
use crate::{ApiError, ServeError};

/// Every route: method and path template. The router serves exactly these; the OpenAPI
/// document lists exactly these (a test checks both ways).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/status"),
    ("GET", "/v1/devices"),
    ("POST", "/v1/devices/check"),
    ("POST", "/v1/devices/printer/recover"),
    ("POST", "/v1/transactions"),
    ("GET", "/v1/transactions"),
    ("GET", "/v1/transactions/{id}"),
    ("GET", "/v1/transactions/{id}/evidence"),
    ("POST", "/v1/transactions/{id}/cancel"),
    ("GET", "/v1/reversals"),
    ("POST", "/v1/reversals/retry"),
    ("GET", "/v1/receipts/owed"),
    ("POST", "/v1/receipts/reprint"),
    ("GET", "/v1/report"),
    ("GET", "/v1/events"),
    ("POST", "/v1/sim/{action}"),
];

/// The OpenAPI document, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The simulator controls of `POST /v1/sim/{action}`.
pub const SIM_ACTIONS: &[&str] = &[
    "insert-card",
    "remove-card",
    "mute-card",
    "swipe",
    "unplug-reader",
    "replug-reader",
    "unplug-printer",
    "replug-printer",
    "printer-fault",
    "paper-near-end",
    "clear-printer",
    "cardholder",
    "host-down",
];

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Longest `wait` for a transaction.
const MAX_WAIT_S: u64 = 300;
/// A long poll looks at its transaction again after this long without a change
/// notification: a safety net only (every state change notifies; a poll that finds its
/// transaction final on this timer is counted in `pos_api_wait_missed_wakeups_total`).
const WAIT_SAFETY_NET: Duration = Duration::from_secs(5);
/// An event stream writes a comment after this long without events, so proxies and clients
/// see it alive.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the API knows of the lane.
pub(crate) struct LaneInfo {
    pub terminal_id: String,
    pub simulated: bool,
    pub config: Config,
    pub start_timeout: Duration,
}

struct Ctx {
    shared: Arc<Shared>,
    commands: Mutex<Sender<Command>>,
    journal: Mutex<Journal>,
    info: LaneInfo,
    token: String,
    stop: AtomicBool,
}

impl Ctx {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, cmd: Command) -> Result<(), ApiError> {
        self.commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(cmd)
            .map_err(|_| ApiError::shutting_down())
    }
}

/// The running listeners.
pub(crate) struct Listeners {
    ctx: Arc<Ctx>,
    servers: Vec<Server>,
    address: String,
    metrics_address: Option<String>,
    token_path: PathBuf,
    socket: Option<PathBuf>,
}

/// Read the token file, or create it (random, mode 0640) when missing. A file other users
/// can read is refused.
fn load_token(path: &Path) -> Result<String, ServeError> {
    let bad = |message: String| ServeError::Token {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_file() {
                return Err(bad(
                    "not a regular file (a symbolic link or a directory): use a plain file".into(),
                ));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o027 != 0 {
                return Err(bad(format!(
                    "mode {mode:o} lets the group write it or other users read it: chmod 640 it (owner writes, group pos reads)"
                )));
            }
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let token = text.trim().to_string();
            if token.len() < 16 {
                return Err(bad("the token is shorter than 16 characters".into()));
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 24];
            getrandom::fill(&mut raw).map_err(|e| bad(format!("no random source: {e}")))?;
            let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
            }
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o640)
                .open(path)
                .map_err(|e| bad(e.to_string()))?;
            f.write_all(format!("{token}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| bad(e.to_string()))?;
            log::info!("created the API token file {}", path.display());
            Ok(token)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

fn listen_tcp(addr: &str, what: &str) -> Result<(Listener, String), ServeError> {
    let sa: std::net::SocketAddr = addr.parse().map_err(|_| {
        ServeError::Config(format!(
            "{what} {addr:?}: write HOST:PORT (e.g. 127.0.0.1:8780) or unix:/PATH"
        ))
    })?;
    let listen_err = |source: std::io::Error| ServeError::Listen {
        what: format!("{what} {addr}"),
        source,
    };
    let l = std::net::TcpListener::bind(sa).map_err(listen_err)?;
    let real = l.local_addr().map_err(listen_err)?.to_string();
    Ok((Listener::Tcp(l), real))
}

fn listen_unix(path: &Path, mode: u32) -> Result<Listener, ServeError> {
    let err = |source: std::io::Error| ServeError::Listen {
        what: format!("API socket {}", path.display()),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(std::io::Error::other(
                "the path exists and is not a socket; remove it or choose another",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another service is listening on it",
            )));
        }
        // A stale socket from a previous run.
        std::fs::remove_file(path).map_err(err)?;
    }
    // Connecting needs write permission on the socket file: created under the process
    // umask (systemd's UMask=0027 gives 0750: nobody else can connect), then set to the
    // configured mode at once.
    let l = std::os::unix::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(Listener::Unix(l))
}

impl Listeners {
    pub(crate) fn start(
        config: &ApiConfig,
        token_path: &Path,
        shared: Arc<Shared>,
        commands: Sender<Command>,
        journal: Mutex<Journal>,
        info: LaneInfo,
    ) -> Result<Listeners, ServeError> {
        let token = load_token(token_path)?;
        let (api, address, socket, needs_token) = match config.listen.strip_prefix("unix:") {
            Some(p) => {
                let path = PathBuf::from(p);
                let server = listen_unix(&path, config.socket_mode)?;
                (
                    server,
                    format!("unix:{}", path.display()),
                    Some(path),
                    config.token_on_socket,
                )
            }
            None => {
                let sa: Option<std::net::SocketAddr> = config.listen.parse().ok();
                if sa.is_some_and(|a| !a.ip().is_loopback()) {
                    return Err(ServeError::Config(format!(
                        "api.listen {:?}: the API is local: listen on 127.0.0.1 or a Unix socket \
                         (metrics_listen may be on the network)",
                        config.listen
                    )));
                }
                let (server, real) = listen_tcp(&config.listen, "api.listen")?;
                (server, real, None, true)
            }
        };
        let ctx = Arc::new(Ctx {
            shared,
            commands: Mutex::new(commands),
            journal,
            info,
            token,
            stop: AtomicBool::new(false),
        });
        let mut limits = Limits::for_connections(config.max_connections);
        limits.max_body = MAX_BODY;
        let start = |listener: Listener, name: &'static str, metrics_only: bool, needs_token| {
            let handler = Arc::new(ApiHandler {
                ctx: Arc::clone(&ctx),
                metrics_only,
                needs_token,
            });
            let metrics = Arc::clone(&ctx.shared.metrics);
            Server::start(listener, name, limits.clone(), handler, metrics)
                .map_err(|e| ServeError::Other(format!("cannot start the API thread: {e}")))
        };
        let mut servers = vec![start(api, "api", false, needs_token)?];
        let mut metrics_address = None;
        if !config.metrics_listen.is_empty() {
            let (m, real) = listen_tcp(&config.metrics_listen, "api.metrics_listen")?;
            servers.push(start(m, "metrics", true, false)?);
            metrics_address = Some(real);
        }
        log::info!("API listening on {address}");
        Ok(Listeners {
            ctx,
            servers,
            address,
            metrics_address,
            token_path: token_path.to_path_buf(),
            socket,
        })
    }

    pub(crate) fn address(&self) -> String {
        self.address.clone()
    }

    pub(crate) fn metrics_address(&self) -> Option<String> {
        self.metrics_address.clone()
    }

    pub(crate) fn token_path(&self) -> PathBuf {
        self.token_path.clone()
    }

    pub(crate) fn stop(&mut self) {
        self.ctx.stop.store(true, Ordering::SeqCst);
        // Long polls look at the stop flag when woken.
        self.ctx.shared.changed.notify_all();
        for s in &mut self.servers {
            s.stop();
        }
        // Event streams notice the stop within a second; give them that.
        let end = Instant::now() + Duration::from_secs(3);
        while self.servers.iter().any(|s| s.open_connections() > 0) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(p) = self.socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The API as the HTTP front sees it: one per listener.
struct ApiHandler {
    ctx: Arc<Ctx>,
    /// The metrics listener: `/metrics` and `/healthz` only.
    metrics_only: bool,
    needs_token: bool,
}

impl crate::http::Handler for ApiHandler {
    fn class(&self, method: &str, path: &str) -> Class {
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, seg.as_slice()) {
            ("GET", ["healthz" | "metrics"]) => Class::Probe,
            _ if self.metrics_only => Class::Normal,
            ("POST", ["v1", "transactions"])
            | ("GET", ["v1", "transactions", _])
            | ("POST", ["v1", "transactions", _, "cancel"]) => Class::Sale,
            ("GET", ["v1", "events"]) => Class::Stream,
            _ => Class::Normal,
        }
    }

    fn handle(&self, req: Request) -> Answer {
        handle(req, &self.ctx, self.metrics_only, self.needs_token)
    }
}

fn respond_json(status: u16, body: &Value) -> Answer {
    Answer::Full(Response::json(status, body))
}

fn respond_error(e: &ApiError) -> Answer {
    Answer::Full(Response::error(e))
}

fn respond_text(status: u16, content_type: &str, text: String) -> Answer {
    Answer::Full(Response::text(status, content_type, text))
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter {key}={v:?} is not a number"))
            }),
        }
    }
}

fn authorized(req: &Request, token: &str) -> bool {
    let Some(value) = req.header("Authorization") else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    // Constant-time comparison: the time does not tell how much of a guess was right. (A
    // guess of another length is refused at once: the length is not the secret.)
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

fn read_body(req: &Request) -> Result<Value, ApiError> {
    let buf = match &req.body {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Err(ApiError::bad_request(format!(
                "the request body is larger than {MAX_BODY} bytes"
            )));
        }
        Err(BodyError::Timeout) => {
            return Err(ApiError {
                status: 408,
                kind: "request_timeout",
                message: "the request body did not arrive in time".into(),
                current: None,
            });
        }
        Err(BodyError::Broken(e)) => {
            return Err(ApiError::bad_request(format!(
                "cannot read the request body: {e}"
            )));
        }
    };
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(buf)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn body_as<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

enum Reply {
    Json(u16, Value),
    Events(Option<u64>),
}

fn handle(req: Request, ctx: &Arc<Ctx>, metrics_only: bool, needs_token: bool) -> Answer {
    let method = req.method.to_ascii_uppercase();
    let url = req.target.clone();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let query = Query(query_params(query));
    log::debug!("API {method} {path}");
    match (method.as_str(), path) {
        ("GET", "/healthz") => {
            let st = ctx.shared.lock();
            let alive = ctx.shared.worker_alive.load(Ordering::SeqCst);
            let body = json!({
                "ok": !st.shutting_down && alive && st.sales_blocked.is_none(),
                "shutting_down": st.shutting_down,
                "sales_blocked": st.sales_blocked,
            });
            drop(st);
            return respond_json(200, &body);
        }
        ("GET", "/metrics") => {
            return respond_text(
                200,
                crate::metrics::CONTENT_TYPE,
                ctx.shared.metrics.encode(),
            );
        }
        _ if metrics_only => {
            return respond_error(&ApiError::not_found(
                "this listener serves only /metrics and /healthz",
            ));
        }
        ("GET", "/openapi.json") => {
            return respond_text(200, "application/json", OPENAPI.to_string());
        }
        _ => {}
    }
    if needs_token && !authorized(&req, &ctx.token) {
        return respond_error(&ApiError::unauthorized());
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = if method == "POST" {
        match read_body(&req) {
            Ok(b) => b,
            Err(e) => return respond_error(&e),
        }
    } else {
        Value::Null
    };
    match route(ctx, &method, &segments, &query, body) {
        Ok(Reply::Json(status, v)) => respond_json(status, &v),
        Ok(Reply::Events(since)) => {
            let since = since.or_else(|| {
                req.header("Last-Event-ID")
                    .and_then(|v| v.trim().parse().ok())
            });
            // Subscribed before the answer's head goes out: a client that saw the head misses
            // no event published after it.
            let sub = ctx.shared.bus.subscribe(since);
            let ctx = Arc::clone(ctx);
            Answer::Stream(Box::new(move |sink: &mut EventSink<'_>| {
                stream_events(sink, &ctx, sub, since);
            }))
        }
        Err(e) => respond_error(&e),
    }
}

fn route(ctx: &Ctx, method: &str, seg: &[&str], q: &Query, body: Value) -> Result<Reply, ApiError> {
    let ok = |v: Value| Ok(Reply::Json(200, v));
    match (method, seg) {
        ("GET", ["v1", "status"]) => ok(status(ctx)?),
        ("GET", ["v1", "devices"]) => ok(json!(ctx.shared.lock().devices)),
        ("POST", ["v1", "devices", "check"]) => {
            let (tx, rx) = channel();
            ctx.send(Command::Check(tx))?;
            let d = rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| ApiError::timeout("the device check did not finish in time"))?;
            ok(json!(d))
        }
        ("POST", ["v1", "devices", "printer", "recover"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::RecoverPrinter(tx))?;
            let conditions = rx
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| ApiError::timeout("the printer recovery did not finish in time"))??;
            ok(json!({ "conditions": conditions }))
        }
        ("POST", ["v1", "transactions"]) => start(ctx, body),
        ("GET", ["v1", "transactions"]) => {
            let limit = q.number::<u32>("limit")?.unwrap_or(50).min(1000);
            let state = q.get("state").filter(|s| !s.is_empty());
            let list = match state {
                Some(s) => {
                    let st = State::from_name(s).ok_or_else(|| {
                        ApiError::bad_request(format!("state {s:?} is not a transaction state"))
                    })?;
                    ctx.journal().in_states(&[st])?
                }
                None => ctx.journal().list(limit)?,
            };
            let current = current_id(ctx);
            let v: Vec<Value> = list
                .iter()
                .take(limit as usize)
                .map(|t| view(t, current))
                .collect();
            ok(json!({ "transactions": v }))
        }
        ("GET", ["v1", "transactions", id]) => {
            let id = parse_id(id)?;
            let wait = q.number::<u64>("wait")?.unwrap_or(0);
            if wait > MAX_WAIT_S {
                return Err(ApiError::bad_request(format!(
                    "wait={wait}: at most {MAX_WAIT_S} seconds; ask again after that"
                )));
            }
            ok(await_txn(ctx, id, Duration::from_secs(wait))?)
        }
        ("GET", ["v1", "transactions", id, "evidence"]) => {
            let id = parse_id(id)?;
            let j = ctx.journal();
            ok(pos_terminal::report::evidence(&j, &ctx.info.config, id)?)
        }
        ("POST", ["v1", "transactions", id, "cancel"]) => cancel(ctx, parse_id(id)?),
        ("GET", ["v1", "reversals"]) => {
            let j = ctx.journal();
            let pending = j.in_states(&[State::ReversalPending])?;
            let stuck = j.in_states(&[State::ReversalStuck])?;
            drop(j);
            let current = current_id(ctx);
            ok(json!({
                "pending": pending.iter().map(|t| view(t, current)).collect::<Vec<_>>(),
                "stuck": stuck.iter().map(|t| view(t, current)).collect::<Vec<_>>(),
            }))
        }
        ("POST", ["v1", "reversals", "retry"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::RetryReversals(tx))?;
            let d = rx
                .recv_timeout(ctx.info.start_timeout)
                .map_err(|_| ApiError::timeout("the reversal retry did not finish in time"))??;
            ok(json!(d))
        }
        ("GET", ["v1", "receipts", "owed"]) => {
            let owed = ctx.journal().in_states(&[State::ReceiptOwed])?;
            let current = current_id(ctx);
            ok(json!({ "owed": owed.iter().map(|t| view(t, current)).collect::<Vec<_>>() }))
        }
        ("POST", ["v1", "receipts", "reprint"]) => {
            refuse_if_busy(ctx)?;
            let (tx, rx) = channel();
            ctx.send(Command::Reprint(tx))?;
            let ids = rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| ApiError::timeout("the reprint did not finish in time"))??;
            ok(json!({ "printed": ids }))
        }
        ("GET", ["v1", "report"]) => {
            let since = match q.number::<i64>("since_ms")? {
                Some(s) => s,
                None => {
                    let now = pos_terminal::journal::now_ms();
                    now - now.rem_euclid(86_400_000)
                }
            };
            let r = pos_terminal::report::report(&ctx.journal(), since)?;
            ok(json!(r))
        }
        ("GET", ["v1", "events"]) => Ok(Reply::Events(q.number::<u64>("since")?)),
        ("POST", ["v1", "sim", action]) => ok(sim(ctx, action, body)?),
        _ => {
            let known = ROUTES.iter().any(|(_, t)| template_matches(t, seg));
            if known {
                Err(ApiError {
                    status: 405,
                    kind: "method_not_allowed",
                    message: format!("{method} is not allowed on /{}", seg.join("/")),
                    current: None,
                })
            } else {
                Err(ApiError {
                    status: 404,
                    kind: "no_route",
                    message: format!("no such route: {method} /{}", seg.join("/")),
                    current: None,
                })
            }
        }
    }
}

fn template_matches(template: &str, seg: &[&str]) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    t.len() == seg.len()
        && t.iter()
            .zip(seg)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not a transaction id")))
}

fn current_id(ctx: &Ctx) -> Option<i64> {
    ctx.shared.lock().current.as_ref().and_then(|c| c.id)
}

fn refuse_if_busy(ctx: &Ctx) -> Result<(), ApiError> {
    let st = ctx.shared.lock();
    if st.shutting_down {
        return Err(ApiError::shutting_down());
    }
    match &st.current {
        Some(c) => Err(ApiError::busy(c.id)),
        None => Ok(()),
    }
}

/// A transaction as the API shows it: masked PAN only, no hash, no sealed data.
fn view(t: &Txn, current: Option<i64>) -> Value {
    json!({
        "id": t.id,
        "operation": t.kind.name(),
        "state": t.state.name(),
        "done": t.state.is_resting() && current != Some(t.id),
        "amount": t.amount,
        "currency": t.currency,
        "pan_masked": t.pan_masked,
        "entry_mode": t.entry_mode,
        "aid": t.aid,
        "label": t.label,
        "stan": t.stan,
        "rrn": t.rrn,
        "auth_code": t.auth_code,
        "response_code": t.response_code,
        "reason": t.reason,
        "original_id": t.original_id,
        "no_receipt": t.no_receipt,
        "voided": t.voided,
        "completed_by": t.completed_by,
        "reversal_reason": t.reversal_reason,
        "reversal_attempts": t.reversal_attempts,
        "next_attempt_ms": t.next_attempt_ms,
        "receipts_printed": t.receipts_printed,
        "created_ms": t.created_ms,
        "updated_ms": t.updated_ms,
        "summary": pos_terminal::report::explain(t),
    })
}

fn status(ctx: &Ctx) -> Result<Value, ApiError> {
    let j = ctx.journal();
    let pending = j.in_states(&[State::ReversalPending])?.len();
    let stuck = j.in_states(&[State::ReversalStuck])?.len();
    let owed = j.in_states(&[State::ReceiptOwed])?.len();
    drop(j);
    let st = ctx.shared.lock();
    Ok(json!({
        "terminal_id": ctx.info.terminal_id,
        "simulated": ctx.info.simulated,
        "version": env!("CARGO_PKG_VERSION"),
        "busy": st.current.is_some(),
        "current": st.current.as_ref().map(|c: &Current| json!({
            "id": c.id,
            "operation": c.operation.name(),
            "state": c.state.map(State::name),
        })),
        "shutting_down": st.shutting_down,
        "devices": st.devices,
        "reversals_pending": pending,
        "reversals_stuck": stuck,
        "receipts_owed": owed,
        "cardholder": if st.cardholder_auto { "auto" } else { "manual" },
        "last_event": ctx.shared.bus.last_seq(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default = "default_operation")]
    operation: String,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    entry: Option<String>,
    #[serde(default)]
    original: Option<i64>,
    #[serde(default)]
    no_receipt: bool,
    #[serde(default)]
    inject: Vec<String>,
    #[serde(default)]
    wait: Option<u64>,
}

fn default_operation() -> String {
    "sale".into()
}

fn operation(name: &str) -> Result<Operation, ApiError> {
    pos_terminal::journal::op_from_name(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "operation {name:?}: one of sale, preauth, completion, void, refund"
        ))
    })
}

fn start(ctx: &Ctx, body: Value) -> Result<Reply, ApiError> {
    let b: StartBody = body_as(body)?;
    let op = operation(&b.operation)?;
    if b.wait.is_some_and(|w| w > MAX_WAIT_S) {
        return Err(ApiError::bad_request(format!(
            "wait: at most {MAX_WAIT_S} seconds"
        )));
    }
    let amount = match (op, b.amount) {
        (Operation::Void, a) => a.unwrap_or(0),
        (_, Some(a)) => a,
        (_, None) => {
            return Err(ApiError::bad_request(
                "amount (minor units, e.g. 1250 for 12.50) is required",
            ));
        }
    };
    let entry = match b.entry.as_deref() {
        None | Some("chip") => CardEntry::Chip,
        Some("swipe") => CardEntry::Swipe,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "entry {other:?}: chip or swipe"
            )));
        }
    };
    let inject: Vec<Injection> = b
        .inject
        .iter()
        .map(|s| s.parse::<Injection>().map_err(ApiError::bad_request))
        .collect::<Result<_, _>>()?;
    if !inject.is_empty() && !ctx.info.simulated {
        return Err(ApiError::not_simulated());
    }
    if inject.iter().any(|i| i.fault == InjectedFault::Crash) {
        return Err(ApiError::bad_request(
            "crash is not injected through the API (it would kill the service); use posctl",
        ));
    }
    let req = TxnRequest {
        operation: op,
        amount,
        entry,
        original: b.original,
        no_receipt: b.no_receipt,
    };
    let (tx, rx) = channel();
    {
        let mut st = ctx.shared.lock();
        if st.shutting_down || !ctx.shared.worker_alive.load(Ordering::SeqCst) {
            return Err(ApiError::shutting_down());
        }
        if let Some(c) = &st.current {
            return Err(ApiError::busy(c.id));
        }
        st.abandoned = false;
        st.current = Some(Current {
            id: None,
            operation: op,
            state: None,
        });
        st.pending_start = Some(tx);
    }
    if let Err(e) = ctx.send(Command::Start { req, inject }) {
        let mut st = ctx.shared.lock();
        st.current = None;
        st.pending_start = None;
        return Err(e);
    }
    let id = match rx.recv_timeout(ctx.info.start_timeout) {
        Ok(r) => r?,
        Err(_) => {
            let mut st = ctx.shared.lock();
            match st.pending_start.take() {
                // The id came just now: the transaction did start.
                None => match rx.try_recv() {
                    Ok(r) => r?,
                    Err(_) => return Err(ApiError::internal("the transaction's start was lost")),
                },
                // Not started: make sure it never does, now that this client gave up.
                Some(_) => {
                    st.abandoned = true;
                    if let Some(h) = ctx.shared.cancel.get() {
                        h.request();
                    }
                    return Err(ApiError::timeout(
                        "the lane did not start the transaction in time, so it will not be started; see GET /v1/status",
                    ));
                }
            }
        }
    };
    match b.wait.filter(|w| *w > 0) {
        Some(w) => Ok(Reply::Json(
            200,
            await_txn(ctx, id, Duration::from_secs(w))?,
        )),
        None => {
            let t = ctx.journal().get(id)?;
            let mut v = view(&t, Some(id));
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "links".into(),
                    json!({
                        "self": format!("/v1/transactions/{id}"),
                        "await": format!("/v1/transactions/{id}?wait=60"),
                        "cancel": format!("/v1/transactions/{id}/cancel"),
                        "events": "/v1/events",
                    }),
                );
            }
            Ok(Reply::Json(202, v))
        }
    }
}

/// The transaction, once it is done (resting and no longer running) or `wait` has passed.
///
/// Answers as soon as the state is final: the change count is read before the journal, so a
/// change that lands between the look and the wait ends the wait at once (see
/// [`crate::notify`]); no timer is involved on that path.
fn await_txn(ctx: &Ctx, id: i64, wait: Duration) -> Result<Value, ApiError> {
    let end = Instant::now() + wait;
    let mut on_timer = false;
    loop {
        let seen = ctx.shared.changed.generation();
        let t = ctx.journal().get(id)?;
        let current = current_id(ctx);
        let v = view(&t, current);
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        // The lane stopped taking sales while this one was in flight (its journal cannot be
        // written): it will not move until the journal does, so say so now rather than at
        // the end of the wait.
        let blocked = ctx.shared.lock().sales_blocked.clone();
        if let (false, true, Some(why)) = (done, current != Some(id), blocked) {
            return Err(ApiError::new(
                503,
                "sales_blocked",
                format!("transaction {id} stopped at {}: {why}", t.state.name()),
            ));
        }
        let now = Instant::now();
        if done || now >= end || ctx.stop.load(Ordering::SeqCst) {
            if done && on_timer {
                log::error!("transaction {id}: a long poll missed its change notification");
                ctx.shared.metrics.api.wait_missed_wakeups.inc();
            }
            return Ok(v);
        }
        let until = end.min(now + WAIT_SAFETY_NET);
        on_timer = !ctx.shared.changed.wait_past(seen, until) && until < end;
    }
}

fn cancel(ctx: &Ctx, id: i64) -> Result<Reply, ApiError> {
    {
        let st = ctx.shared.lock();
        if let Some(c) = st.current.as_ref().filter(|c| c.id == Some(id)) {
            let accepted = ctx.shared.cancel.get().is_some_and(|h| h.request());
            if !accepted {
                return Err(ApiError::too_late(format!(
                    "transaction {id} is {}: its request is armed and may be with the host, so it runs to its end; void or refund it afterwards",
                    c.state.map(State::name).unwrap_or("starting")
                )));
            }
            return Ok(Reply::Json(
                202,
                json!({
                    "id": id,
                    "cancel": "requested",
                    "message": "the transaction stops before anything is sent; await it for the outcome",
                }),
            ));
        }
    }
    let t = ctx.journal().get(id)?;
    Err(ApiError::too_late(format!(
        "transaction {id} is not in progress: it ended {}",
        t.state.name()
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimBody {
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    fault: Option<String>,
    #[serde(default)]
    on: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
}

fn sim(ctx: &Ctx, action: &str, body: Value) -> Result<Value, ApiError> {
    let Some(lane) = ctx.shared.sim.as_ref() else {
        return Err(ApiError::not_simulated());
    };
    if !SIM_ACTIONS.contains(&action) {
        return Err(ApiError::not_found(format!(
            "no simulator action {action:?}; one of: {}",
            SIM_ACTIONS.join(", ")
        )));
    }
    let b: SimBody = if body.is_null() {
        SimBody::default()
    } else {
        body_as(body)?
    };
    let card: CardSpec = match &b.profile {
        Some(p) => p
            .parse::<Profile>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?
            .into(),
        None => lane.card(),
    };
    let lane_err = |e: pos_lane::LaneError| ApiError {
        status: 409,
        kind: "device",
        message: e.to_string(),
        current: None,
    };
    let on = b.on.unwrap_or(true);
    match action {
        "insert-card" => lane.insert_card(card).map_err(lane_err)?,
        "remove-card" => lane.remove_card().map_err(lane_err)?,
        "mute-card" => lane.mute_card().map_err(lane_err)?,
        "swipe" => lane.swipe(card).map_err(lane_err)?,
        "unplug-reader" => lane.unplug_reader().map_err(lane_err)?,
        "replug-reader" => lane.replug_reader().map_err(lane_err)?,
        "unplug-printer" => lane.unplug_printer().map_err(lane_err)?,
        "replug-printer" => lane.replug_printer().map_err(lane_err)?,
        "printer-fault" => {
            let name = b.fault.as_deref().unwrap_or("");
            let fault: InjectedFault = name.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "fault {name:?}: one of paper-out, cover-open, cutter-jam, printer-offline"
                ))
            })?;
            lane.printer_fault(&fault, false).map_err(lane_err)?;
        }
        "paper-near-end" => lane.set_printer_near_end(on).map_err(lane_err)?,
        "clear-printer" => lane.clear_printer_faults().map_err(lane_err)?,
        "cardholder" => {
            let auto = match b.mode.as_deref() {
                Some("auto") => true,
                Some("manual") => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "mode {other:?}: auto (the simulated cardholder inserts or swipes when asked) or manual"
                    )));
                }
            };
            ctx.shared.lock().cardholder_auto = auto;
        }
        "host-down" => match ctx.shared.host.as_ref() {
            Some(h) => h
                .set_down(on)
                .map_err(|e| ApiError::internal(format!("the fake host: {e}")))?,
            None => {
                return Err(ApiError::not_found(
                    "this lane does not use the built-in fake host",
                ));
            }
        },
        _ => {
            return Err(ApiError::not_found(format!(
                "no simulator action {action:?}"
            )));
        }
    }
    Ok(json!({ "done": action }))
}

/// `GET /v1/events`: server-sent events. The subscription's queue is bounded; a client that
/// falls behind is told which events it missed (`event: missed`, with the sequence number to
/// reconnect with) when it can still take that, and the stream ends. One that stops reading
/// altogether is cut off by the write timeout.
fn stream_events(sink: &mut EventSink<'_>, ctx: &Ctx, mut sub: Subscription, since: Option<u64>) {
    let mut last = since.unwrap_or_else(|| sub.start_seq());
    let hello = format!(
        "retry: 2000\n: pos-serve events; last event {}\n\n",
        sub.start_seq()
    );
    if sink.send(&hello).is_err() {
        return;
    }
    let mut idle = Duration::ZERO;
    let tick = Duration::from_secs(1);
    loop {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        if sink.client_gone() {
            return;
        }
        match sub.recv_timeout(tick) {
            Ok(e) => {
                idle = Duration::ZERO;
                let data = serde_json::to_string(&*e).unwrap_or_else(|_| "{}".into());
                let text = format!("id: {}\nevent: {}\ndata: {data}\n\n", e.seq, e.kind);
                if sink.send(&text).is_err() {
                    ctx.shared.metrics.api.event_streams_dropped.inc();
                    log::info!(
                        "event stream: the client stopped reading; closed after event {last}"
                    );
                    return;
                }
                last = e.seq;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                idle += tick;
                if idle >= KEEPALIVE {
                    idle = Duration::ZERO;
                    if sink.send(": keepalive\n\n").is_err() {
                        ctx.shared.metrics.api.event_streams_dropped.inc();
                        return;
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if sub.fell_behind() {
                    ctx.shared.metrics.api.event_streams_dropped.inc();
                    log::info!(
                        "event stream: the client fell behind after event {last}; told to reconnect"
                    );
                    let marker = json!({
                        "type": "missed",
                        "last_delivered": last,
                        "detail": format!(
                            "this client fell more than {} events behind: later events were not \
                             sent; reconnect with ?since={last} (or Last-Event-ID: {last})",
                            crate::events::QUEUE
                        ),
                    });
                    let _ = sink.send(&format!("event: missed\ndata: {marker}\n\n"));
                    return;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_bad_escapes_do_not_panic() {
        let q = Query(query_params(
            "wait=30&state=reversal_pending&x=%41%2&y=%zz&z=a+b",
        ));
        assert_eq!(q.get("wait"), Some("30"));
        assert_eq!(q.get("state"), Some("reversal_pending"));
        assert_eq!(q.get("x"), Some("A%2"));
        assert_eq!(q.get("y"), Some("%zz"));
        assert_eq!(q.get("z"), Some("a b"));
        assert!(q.number::<u64>("state").is_err());
        assert_eq!(q.number::<u64>("wait").unwrap(), Some(30));
        for s in ["%", "%%", "%4", "a%", "%\u{e9}9", "&&=&"] {
            let _ = query_params(s);
        }
    }

    #[test]
    fn templates_match_segments() {
        assert!(template_matches(
            "/v1/transactions/{id}",
            &["v1", "transactions", "7"]
        ));
        assert!(!template_matches(
            "/v1/transactions/{id}",
            &["v1", "transactions"]
        ));
        assert!(template_matches(
            "/v1/sim/{action}",
            &["v1", "sim", "swipe"]
        ));
    }
}
