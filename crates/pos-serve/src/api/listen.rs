//! The API's listeners (the socket or 127.0.0.1, and `/metrics` on its own address) and the
//! token file.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pos_terminal::config::ApiConfig;
use pos_terminal::journal::Journal;

use super::{ApiHandler, Ctx, LaneInfo, MAX_BODY};
use crate::ServeError;
use crate::http::{Limits, Listener, Server};
use crate::worker::{Command, Shared};

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
