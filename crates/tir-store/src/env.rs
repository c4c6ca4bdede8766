//! Where the writer's time and admin message ids come from. Passed in, so a
//! test can drive the engine with a seeded clock and id source and get the
//! same journal, byte for byte, on every backend and however the messages
//! were batched.

/// The time the writer stamps on each command (journal `at_ms`, the time a
/// message is applied at, outbox and revocation times).
pub trait Clock: Send {
    /// Milliseconds since the Unix epoch; read once per command.
    fn now_ms(&mut self) -> i64;
}

/// The message ids of admin writes (parties, offices, holders, revocations),
/// which have no client-chosen id of their own.
pub trait IdSource: Send {
    /// A fresh id; drawn once per admin command.
    fn admin_message_id(&mut self) -> String;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&mut self) -> i64 {
        crate::now_ms()
    }
}

/// Random ids, 8 bytes from the OS random source as hex.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn admin_message_id(&mut self) -> String {
        crate::token::random_hex(8)
    }
}

/// A clock that starts at `next_ms` and moves `step_ms` forward at each reading.
#[derive(Debug, Clone, Copy)]
pub struct SteppedClock {
    pub next_ms: i64,
    pub step_ms: i64,
}

impl Clock for SteppedClock {
    fn now_ms(&mut self) -> i64 {
        let now = self.next_ms;
        self.next_ms += self.step_ms;
        now
    }
}

/// A clock that stands still until moved: the test keeps one handle (clones
/// share the time) and moves it, while the writer reads another.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock { now_ms: std::sync::Arc::new(start_ms.into()) }
    }

    /// The time it shows.
    pub fn now(&self) -> i64 {
        self.now_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&mut self) -> i64 {
        self.now()
    }
}

/// Ids drawn from a seeded generator (SplitMix64): the same seed gives the
/// same ids, in the same 16-hex-digit form as `RandomIds`.
#[derive(Debug, Clone, Copy)]
pub struct SeededIds {
    state: u64,
}

impl SeededIds {
    pub fn new(seed: u64) -> SeededIds {
        SeededIds { state: seed }
    }
}

impl IdSource for SeededIds {
    fn admin_message_id(&mut self) -> String {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        crate::journal::hex(&z.to_be_bytes())
    }
}

/// The clock and id source one store's writer uses.
pub struct Env {
    pub clock: Box<dyn Clock>,
    pub ids: Box<dyn IdSource>,
    /// A test's fault switch (`faults`); `None` for a server.
    pub(crate) faults: Option<crate::faults::Faults>,
}

impl Env {
    /// System time and random ids: what a server runs with.
    pub fn system() -> Env {
        Env { clock: Box::new(SystemClock), ids: Box::new(RandomIds), faults: None }
    }

    /// A reproducible environment: time starts at `start_ms` and moves 1 ms
    /// per command; admin ids follow `seed`.
    pub fn seeded(seed: u64, start_ms: i64) -> Env {
        Env {
            clock: Box::new(SteppedClock { next_ms: start_ms, step_ms: 1 }),
            ids: Box::new(SeededIds::new(seed)),
            faults: None,
        }
    }

    /// The time of `clock`, moved by hand, and admin ids following `seed`.
    pub fn manual(seed: u64, clock: ManualClock) -> Env {
        Env { clock: Box::new(clock), ids: Box::new(SeededIds::new(seed)), faults: None }
    }

    /// This environment with a test's fault switch: while it is set to
    /// `Fault::Write`, each command stamped fails inside its transaction.
    pub fn with_faults(self, faults: &crate::faults::Faults) -> Env {
        Env { faults: Some(faults.clone()), ..self }
    }

    /// What the writer stamps on `command` before running it. Drawn once per
    /// command, so a batch that is rolled back and retried one by one reuses
    /// the same time and id.
    pub(crate) fn stamp(&mut self, command: &crate::engine::Command) -> Stamp {
        let at_ms = self.clock.now_ms();
        let admin_message_id = command.draws_id().then(|| self.ids.admin_message_id());
        let fails = self.faults.as_ref().is_some_and(|f| f.get() == crate::faults::Fault::Write);
        Stamp { at_ms, admin_message_id, fails }
    }
}

impl Default for Env {
    fn default() -> Env {
        Env::system()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

/// The time and, for admin commands, the message id one command runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub at_ms: i64,
    pub admin_message_id: Option<String>,
    /// An injected fault: the command fails after its work, before the commit (`faults`).
    pub fails: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_for_a_seed_and_differ_between_seeds() {
        let draw = |seed| {
            let mut ids = SeededIds::new(seed);
            [ids.admin_message_id(), ids.admin_message_id()]
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let [a, b] = draw(7);
        assert_ne!(a, b);
        assert!(a.len() == 16 && a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn a_stepped_clock_moves_by_its_step_at_each_reading() {
        let mut clock = SteppedClock { next_ms: 1_000, step_ms: 5 };
        assert_eq!([clock.now_ms(), clock.now_ms(), clock.now_ms()], [1_000, 1_005, 1_010]);
    }

    #[test]
    fn a_manual_clock_moves_only_when_moved_and_its_clones_share_the_time() {
        let handle = ManualClock::new(1_000);
        let mut read = handle.clone();
        assert_eq!([read.now_ms(), read.now_ms()], [1_000, 1_000]);
        handle.advance(std::time::Duration::from_secs(2));
        assert_eq!(read.now_ms(), 3_000);
    }
}
