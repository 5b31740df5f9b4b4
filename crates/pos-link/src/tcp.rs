//! TCP links (network printers on port 9100, the acquirer host).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{LinkError, Operation, classify_io};
use crate::link::{Deadline, Link, Pacing, write_all_with};

/// The shortest socket timeout we set: `set_read_timeout(Some(0))` is an error in std.
const MIN_SOCKET_TIMEOUT: Duration = Duration::from_millis(1);

/// A TCP connection with `TCP_NODELAY` set (small status requests must not wait for Nagle).
#[derive(Debug)]
pub struct TcpLink {
    stream: TcpStream,
    target: String,
}

impl TcpLink {
    /// Connect to `host:port`, trying each resolved address until one answers, all within
    /// `connect_timeout`.
    ///
    /// Errors: `Refused` (kind `Disconnected`: nothing listens there), `Timeout`, `NotFound`
    /// (the name does not resolve), `Io`.
    pub fn connect(host: &str, port: u16, connect_timeout: Duration) -> Result<Self, LinkError> {
        let target = if host.contains(':') {
            format!("tcp:[{host}]:{port}")
        } else {
            format!("tcp:{host}:{port}")
        };
        let deadline = Deadline::after(connect_timeout);
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| LinkError::NotFound {
                target: target.clone(),
                detail: format!("cannot resolve {host:?}"),
                source: Some(e),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(LinkError::NotFound {
                target,
                detail: format!("{host:?} resolves to no address"),
                source: None,
            });
        }
        let mut last = None;
        for addr in addrs {
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&addr, remaining) {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(|e| {
                        classify_io(e, &target, Operation::Configure, Duration::ZERO)
                    })?;
                    log::debug!("{target}: connected to {addr}");
                    return Ok(TcpLink { stream, target });
                }
                Err(e) => last = Some(classify_io(e, &target, Operation::Open, deadline.waited())),
            }
        }
        Err(last
            .unwrap_or_else(|| LinkError::timeout(&target, Operation::Open, deadline.waited(), 0)))
    }

    /// Wrap an accepted or already connected stream (simulators, tests).
    ///
    /// Errors: `Io` when `TCP_NODELAY` cannot be set.
    pub fn from_stream(stream: TcpStream) -> Result<Self, LinkError> {
        let target = match stream.peer_addr() {
            Ok(a) => format!("tcp:{a}"),
            Err(_) => "tcp:unknown-peer".to_string(),
        };
        stream
            .set_nodelay(true)
            .map_err(|e| classify_io(e, &target, Operation::Configure, Duration::ZERO))?;
        Ok(TcpLink { stream, target })
    }

    /// Close the sending side; the peer reads end-of-file.
    ///
    /// Errors: `Disconnected` when already closed, `Io`.
    pub fn shutdown_write(&mut self) -> Result<(), LinkError> {
        self.stream
            .shutdown(Shutdown::Write)
            .map_err(|e| classify_io(e, &self.target, Operation::Write, Duration::ZERO))
    }
}

impl Link for TcpLink {
    fn target(&self) -> &str {
        &self.target
    }

    fn write_all(&mut self, data: &[u8], deadline: Deadline) -> Result<(), LinkError> {
        let target = self.target.clone();
        write_all_with(&target, data, deadline, |chunk, remaining| {
            self.stream
                .set_write_timeout(Some(remaining.max(MIN_SOCKET_TIMEOUT)))
                .map_err(|e| classify_io(e, &target, Operation::Configure, Duration::ZERO))?;
            self.stream
                .write(chunk)
                .map_err(|e| classify_io(e, &target, Operation::Write, deadline.waited()))
        })
    }

    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            self.stream
                .set_read_timeout(Some(deadline.remaining().max(MIN_SOCKET_TIMEOUT)))
                .map_err(|e| classify_io(e, &self.target, Operation::Configure, Duration::ZERO))?;
            return match self.stream.read(buf) {
                Ok(0) => Err(LinkError::disconnected(
                    &self.target,
                    Operation::Read,
                    "the peer closed the connection",
                )),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(classify_io(
                    e,
                    &self.target,
                    Operation::Read,
                    deadline.waited(),
                )),
            };
        }
    }

    fn flush(&mut self, _deadline: Deadline) -> Result<(), LinkError> {
        self.stream
            .flush()
            .map_err(|e| classify_io(e, &self.target, Operation::Flush, Duration::ZERO))
    }

    fn discard_input(&mut self) -> Result<usize, LinkError> {
        self.stream
            .set_nonblocking(true)
            .map_err(|e| classify_io(e, &self.target, Operation::Configure, Duration::ZERO))?;
        let mut n = 0;
        let mut buf = [0u8; 512];
        let result = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    break Err(LinkError::disconnected(
                        &self.target,
                        Operation::Read,
                        "the peer closed the connection",
                    ));
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    break Err(classify_io(
                        e,
                        &self.target,
                        Operation::Read,
                        Duration::ZERO,
                    ));
                }
            }
        };
        self.stream
            .set_nonblocking(false)
            .map_err(|e| classify_io(e, &self.target, Operation::Configure, Duration::ZERO))?;
        result
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 1460,
            bytes_per_second: None,
        }
    }
}
