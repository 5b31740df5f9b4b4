//! Scenarios: wedge.

use super::*;

pub(super) fn wedge_swipe(ctx: &mut Ctx<'_>) -> Outcome {
    // The keyboard enumerates after the reader /init waits for: when this is the first case
    // (`--only wedge`) it may not be there yet.
    let asked = Instant::now();
    let path = loop {
        if let Some(p) = input_event_by_name(Path::new("/sys"), Path::new("/dev"), KEYBOARD_NAME) {
            break p;
        }
        if asked.elapsed() >= EVENT_LIMIT {
            return Err(fail(format!(
                "no input device named like {KEYBOARD_NAME:?} in /sys/class/input after {} s",
                EVENT_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let uri_text = format!("evdev:{}", path.display());
    ctx.step(format!("keyboard at {uri_text}"));
    let uri = DeviceUri::parse(&uri_text).map_err(|e| fail(format!("{uri_text}: {e}")))?;
    // The host types through the monitor's sendkey, key by key: a long gap is allowed; the
    // Enter it types after the text ends the swipe.
    let mut wedge = pos_magstripe::wedge::EvdevWedge::open_with(&uri, Duration::from_secs(3))
        .map_err(|e| device_fail(&format!("open {uri_text}"), &e))?;
    // Typed while we read: the kernel keeps only a few dozen events per reader.
    let control = ctx.control.clone();
    let typist = std::thread::spawn(move || {
        control.request(&Verb::KeyboardType(swipe_text()), REQUEST_TIMEOUT)
    });
    // Read in slices so that a refused request ends the wait (a swipe under way at the
    // end of a slice is still finished by `read_swipe`).
    let started = Instant::now();
    let swipe = loop {
        match wedge.read_swipe(Duration::from_millis(500)) {
            Err(e) if e.kind() == FaultKind::Timeout => {
                if typist.is_finished() || started.elapsed() >= REQUEST_TIMEOUT {
                    // The host is done typing (or failed): a last short wait for the keys.
                    break wedge.read_swipe(Duration::from_secs(1));
                }
            }
            other => break other,
        }
    };
    let typed = typist
        .join()
        .map_err(|_| fail("the keyboard-type request panicked"))?;
    match &typed {
        Ok(_) => ctx.step("host typed the test swipe"),
        Err(e) => return Err(fail(e.clone())),
    }
    let swipe = swipe.map_err(|e| device_fail("read the swipe", &e))?;
    ctx.step(format!(
        "swipe: {} characters, {} unknown key(s), {} dropped",
        swipe.text.len(),
        swipe.unknown_keys,
        swipe.dropped
    ));
    let [t1, t2, t3] = pos_magstripe::parse_ascii(&swipe.text);
    ctx.step(format!(
        "tracks: {:?} / {:?} / {:?}",
        t1.status, t2.status, t3.status
    ));
    let expected = pos_hal::mask_pan(TEST_SWIPE_PAN);
    let t2 = pos_magstripe::Track2Data::parse(t2.data)
        .map_err(|e| fail(format!("track 2 does not decode: {e}")))?;
    let t1 = pos_magstripe::Track1Data::parse(t1.data)
        .map_err(|e| fail(format!("track 1 does not decode: {e}")))?;
    let (p1, p2) = (t1.masked_pan(), t2.masked_pan());
    ctx.step(format!(
        "track 1 PAN {}, track 2 PAN {}, Luhn {}",
        p1.as_str(),
        p2.as_str(),
        if t2.luhn_ok() { "ok" } else { "BAD" }
    ));
    if p1.as_str() != expected || p2.as_str() != expected {
        return Err(fail(format!(
            "the swipe reads PAN {} / {}, expected {expected}",
            p1.as_str(),
            p2.as_str()
        )));
    }
    Ok(format!("both tracks read, PAN {expected}"))
}
