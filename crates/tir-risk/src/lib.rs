//! Risk management on advance data (issue 12): which arriving transports each
//! customs administration inspects. Pure compute plus its own persistence
//! types: no I/O beyond reading the files its callers hand it.

pub mod assessment;
pub mod bacuda;
pub mod context;
pub mod due;
pub mod eval;
pub mod features;
pub mod model;
pub mod policy;
pub mod records;
pub mod rules;
pub mod serving;
pub mod stats;
