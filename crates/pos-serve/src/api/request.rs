//! Reading a request: query parameters and the JSON body.

use serde_json::{Value, json};

use super::MAX_BODY;
use crate::ApiError;
use crate::http::{BodyError, Request};

pub(super) fn query_params(query: &str) -> Vec<(String, String)> {
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

pub(super) struct Query(pub(super) Vec<(String, String)>);

impl Query {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter {key}={v:?} is not a number"))
            }),
        }
    }
}

pub(super) fn read_body(req: &Request) -> Result<Value, ApiError> {
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

pub(super) fn body_as<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
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
}
