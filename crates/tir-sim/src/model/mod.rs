//! The traffic model, pure (no I/O): a world of road corridors, customs
//! offices, holders and guarantee chains (`world`), a seeded stream of
//! transports on it (`traffic`), and the messages of each transport in
//! order (`script`). The same world, seed and index give the same transport
//! and the same messages, to the byte.

pub mod goods;
mod names;
pub mod rng;
pub mod script;
pub mod traffic;
pub mod truth;
pub mod world;
