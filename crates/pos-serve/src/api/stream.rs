//! `GET /v1/events`: the live event stream.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::Ctx;
use crate::events::Subscription;
use crate::http::EventSink;

/// An event stream writes a comment after this long without events, so proxies and clients
/// see it alive.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/events`: server-sent events. The subscription's queue is bounded; a client that
/// falls behind is told which events it missed (`event: missed`, with the sequence number to
/// reconnect with) when it can still take that, and the stream ends. One that stops reading
/// altogether is cut off by the write timeout.
pub(super) fn stream_events(
    sink: &mut EventSink<'_>,
    ctx: &Ctx,
    mut sub: Subscription,
    since: Option<u64>,
) {
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
