//! Scenarios: msr.

use super::*;

pub(super) fn swipe(ctx: &mut Ctx<'_>) -> Outcome {
    let m = msr(ctx.devices)?;
    let mut got = None;
    let mut bad_reads = 0u32;
    ask(
        ctx.operator,
        &mut ctx.steps,
        ctx.limit,
        Action::Swipe,
        "swipe the test card through the stripe reader now",
        &mut || match m.wait_for_swipe(Duration::from_millis(100)) {
            Ok(s) => {
                got = Some(s);
                Ok(true)
            }
            Err(e) if e.kind() == FaultKind::Timeout => Ok(false),
            // Swipe again: a technician's bad swipe is not the reader's fault.
            Err(e) if e.kind() == FaultKind::BadRead => {
                bad_reads += 1;
                Ok(false)
            }
            Err(e) => Err(format!("waiting for a swipe: {e} [{}]", e.kind())),
        },
    )?;
    let Some(s) = got else {
        return Err(fail("no swipe"));
    };
    let statuses = s.statuses().map(TrackStatus::name).join("/");
    // The PAN: track 2 up to '=', else track 1 after 'B' up to '^'. Only ever shown masked.
    let pan = s.tracks[1]
        .data
        .as_ref()
        .and_then(|d| d.expose().split(|b| *b == b'=').next().map(<[u8]>::to_vec))
        .or_else(|| {
            s.tracks[0].data.as_ref().and_then(|d| {
                d.expose()
                    .strip_prefix(b"B")
                    .and_then(|t| t.split(|b| *b == b'^').next())
                    .map(<[u8]>::to_vec)
            })
        })
        .map(|p| pos_hal::mask_pan(&String::from_utf8_lossy(&p)));
    ctx.note(format!(
        "tracks {statuses}, card {}{}",
        pan.as_deref().unwrap_or("(no PAN)"),
        if bad_reads > 0 {
            format!(", after {bad_reads} bad reads")
        } else {
            String::new()
        }
    ));
    if !s.is_clean() {
        return Err(End::Fail {
            message: format!("the swipe did not read cleanly: tracks {statuses}"),
            hint: hint(FaultKind::BadRead).map(str::to_string),
        });
    }
    Ok(())
}
