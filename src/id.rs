//! Task identity: the one engine type every layer names (errors, events,
//! sealing's associated data), so it lives at the bottom.

use std::fmt;

/// A task's identity, unique within one scheduler for its lifetime.
///
/// Besides the number it carries the instant the task was first scheduled
/// for: that is where an anonymous task waits on the timeline until it is
/// re-planned, so a lookup by id finds it there without an id index (see
/// `engine::registry`).
///
/// ```
/// use cronlane::{Schedule, Scheduler};
/// use std::time::Duration;
///
/// let s = Scheduler::builder().test_mode(true).build();
/// let id = s.add(Schedule::every(Duration::from_secs(5))).run(|| ())?;
/// println!("registered {id}");        // "#0"-style; Debug gives "TaskId(0)"
/// s.pause(id)?;                         // management calls take the id...
/// s.add(Schedule::every(Duration::from_secs(5))).name("named").run(|| ())?;
/// s.pause("named")?;                    // ...or a name
/// assert_eq!(s.info(id)?.id, id);
/// # Ok::<(), cronlane::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub(crate) n: u64,
    pub(crate) first_at: i64,
}

impl TaskId {
    pub(crate) fn new(n: u64, first_at: i64) -> TaskId {
        TaskId { n, first_at }
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.n
    }
}

/// Shows the number, as `Display` does: `TaskId(7)`.
impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.n)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.n)
    }
}

/// Says which task a management call is about: a [`TaskId`] or a name.
///
/// `TaskId`, `&str`, `String` and references to them are keys:
///
/// ```
/// use cronlane::{Schedule, Scheduler, TaskKey};
/// use std::time::Duration;
///
/// fn pause_all<K: TaskKey>(s: &Scheduler, keys: impl IntoIterator<Item = K>) -> Result<(), cronlane::Error> {
///     keys.into_iter().try_for_each(|k| s.pause(k))
/// }
///
/// let s = Scheduler::builder().test_mode(true).build();
/// s.add(Schedule::every(Duration::from_secs(5))).name("a").run(|| ())?;
/// s.add(Schedule::every(Duration::from_secs(5))).name("b").run(|| ())?;
/// pause_all(&s, ["a", "b"])?;
/// # Ok::<(), cronlane::Error>(())
/// ```
pub trait TaskKey {
    /// The key in a form the scheduler can look up.
    fn task_key(&self) -> KeyRef<'_>;
}

/// A borrowed task key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// By id.
    Id(TaskId),
    /// By name.
    Name(&'a str),
}

impl TaskKey for TaskId {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Id(*self)
    }
}

impl TaskKey for &str {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}

impl TaskKey for String {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}

impl TaskKey for &String {
    fn task_key(&self) -> KeyRef<'_> {
        KeyRef::Name(self)
    }
}
