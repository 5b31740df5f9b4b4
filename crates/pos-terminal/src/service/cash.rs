//! Cash sales: the minimal cash tender the cash drawer needs.
//!
//! The lane's transactions are card transactions (the acquirer's operations, batches and
//! settlement). A cash sale never goes to the host and is in no batch, so it is not a row of
//! the transaction table: it is a lane event in the journal (kind `cash`), and what happened
//! to the drawer is another (kind `drawer`). A refusal is journaled too (kind `drawer`,
//! "cash sale ... refused"), so the journal shows every cash sale asked for.

use pos_hal::{DrawerState, Fault, FaultKind};
use serde::Serialize;

use super::*;

/// What a cash sale did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CashSale {
    /// Amount, minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// The drawer's switch after the pulse (`open`; `closed` when the drawer did not
    /// spring open; `unknown` when it cannot be read); `None` when the pulse failed or the
    /// lane has no drawer.
    pub drawer: Option<DrawerState>,
    /// Why the drawer was not opened (no drawer on this lane, or the device's error with
    /// its fault kind), when it was not.
    pub drawer_problem: Option<String>,
}

/// The lane has no cash drawer (kind [`FaultKind::NotFound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDrawer;

impl std::fmt::Display for NoDrawer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lane has no cash drawer (config: [devices] drawer = \"printer\")")
    }
}

impl std::error::Error for NoDrawer {}

impl Fault for NoDrawer {
    fn kind(&self) -> FaultKind {
        FaultKind::NotFound
    }
}

impl Terminal {
    /// The cash drawer's switch now.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the lane has no drawer; the drawer's error otherwise
    /// (`PrinterOffline`, `Disconnected`, `Timeout`, `Protocol`).
    pub fn drawer_state(&mut self) -> Result<DrawerState, DeviceError> {
        match self.devices.drawer.as_mut() {
            None => Err(DeviceError::new(NoDrawer)),
            Some(d) => d.drawer_state(),
        }
    }

    /// Open the cash drawer (a cashier's "no sale"), journaled as a lane event.
    ///
    /// # Errors
    /// [`FaultKind::NotFound`] when the lane has no drawer; the drawer's error otherwise
    /// (`CoverOpen`, `PaperOut`, `PrinterOffline`: the printer could not pulse it now;
    /// `InvalidInput`, `Disconnected`, `Timeout`). A journal that cannot be written is
    /// logged, not an error: the drawer's answer is still the caller's.
    pub fn open_drawer(&mut self, why: &str) -> Result<DrawerState, DeviceError> {
        let r = match self.devices.drawer.as_mut() {
            None => Err(DeviceError::new(NoDrawer)),
            Some(d) => d.open_drawer(),
        };
        let detail = match &r {
            Ok(s) => format!("drawer pulsed ({why}): it reads {s}"),
            Err(e) => format!("drawer not opened ({why}): {e} [{}]", e.kind()),
        };
        if let Err(e) = self.journal.event(None, "drawer", &detail) {
            log::error!("{detail}; and the journal could not record it: {e}");
        }
        self.say(None, &detail);
        r
    }

    /// A cash sale of `amount`: recorded in the journal, then the drawer opened.
    ///
    /// With `[drawer] require_closed_before_sale`, the drawer must read closed first:
    /// open, unknown, unreadable (printer offline, unplugged) or no drawer at all refuse the
    /// sale with [`TerminalError::DrawerNotClosed`], which names the drawer's state; the
    /// refusal is journaled (event `drawer`) and nothing is recorded as sold.
    ///
    /// A drawer that does not open after the sale was recorded does not undo the sale (the
    /// cash is in the cashier's hand): [`CashSale::drawer_problem`] says why, and the
    /// journal has it.
    ///
    /// # Errors
    /// [`TerminalError::Blocked`] in a journal outage; [`TerminalError::Invalid`] for an
    /// amount outside the lane's limits; [`TerminalError::DrawerNotClosed`];
    /// [`TerminalError::Journal`] when the sale cannot be recorded (then the drawer stays
    /// shut).
    pub fn cash_sale(&mut self, amount: u64) -> Result<CashSale, TerminalError> {
        self.check_journal()?;
        let r = self.cash_sale_inner(amount);
        self.storage_guard(r)
    }

    fn cash_sale_inner(&mut self, amount: u64) -> Result<CashSale, TerminalError> {
        let limits = &self.config.limits;
        if amount < limits.min_amount || amount > limits.max_amount {
            return Err(TerminalError::Invalid(format!(
                "amount {} is outside the lane's limits {}..={}",
                receipt::money(amount),
                receipt::money(limits.min_amount),
                receipt::money(limits.max_amount)
            )));
        }
        if self.config.drawer.require_closed_before_sale {
            let (state, kind, detail) = match self.devices.drawer.as_mut().map(|d| d.drawer_state())
            {
                None => (
                    DrawerState::Unknown,
                    FaultKind::NotFound,
                    NoDrawer.to_string(),
                ),
                Some(Ok(DrawerState::Closed)) => {
                    (DrawerState::Closed, FaultKind::Busy, String::new())
                }
                Some(Ok(DrawerState::Open)) => (
                    DrawerState::Open,
                    FaultKind::Busy,
                    "close it before the next cash sale".to_string(),
                ),
                Some(Ok(DrawerState::Unknown)) => (
                    DrawerState::Unknown,
                    FaultKind::Protocol,
                    "the printer does not report the drawer switch".to_string(),
                ),
                Some(Err(e)) => (
                    DrawerState::Unknown,
                    e.kind(),
                    format!("its state cannot be read: {e} [{}]", e.kind()),
                ),
            };
            if state != DrawerState::Closed {
                let refusal = TerminalError::DrawerNotClosed {
                    state,
                    kind,
                    detail,
                };
                let note = format!("cash sale of {} refused: {refusal}", receipt::money(amount));
                self.journal.event(None, "drawer", &note)?;
                self.say(None, &note);
                return Err(refusal);
            }
        }
        let sale = format!("cash sale of {}", receipt::money(amount));
        self.journal.event(None, "cash", &sale)?;
        self.say(None, &sale);
        let (drawer, drawer_problem) = if self.devices.drawer.is_some() {
            match self.open_drawer(&sale) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(format!("{e} [{}]", e.kind()))),
            }
        } else {
            (None, Some("the lane has no cash drawer".to_string()))
        };
        Ok(CashSale {
            amount,
            currency: self.config.currency,
            drawer,
            drawer_problem,
        })
    }
}
