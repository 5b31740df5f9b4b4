//! Helpers shared by the posctl integration tests.

pub mod emupos;
