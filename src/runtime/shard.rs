//! Shard threads: one OS thread per shard, pinned to its core, building its own state on that core.
//!
//! Start-up goes in two steps so mailboxes can be wired before any thread runs:
//!
//! 1. [`ShardSetup::new`] fixes the shard count and (optionally) each shard's core, and creates one
//!    [`Doorbell`] per shard. The caller builds its mailboxes with those doorbells
//!    ([`mailbox`](super::mailbox)) and packs each shard's endpoints into a per-shard `init` value.
//! 2. [`ShardSetup::spawn`] starts threads named `aurora-shard-N`. Each pins itself first; only when
//!    every shard is pinned does each call the body with its context and its `init`, on its own
//!    thread, so the state it allocates is first touched by the core that will use it (on a NUMA
//!    box that places the pages on the shard's node).
//!
//! A shard whose body fails or panics requests a group stop ([`StopSignal`]), so its siblings leave
//! their loops instead of waiting forever for it; [`ShardGroup::join`] then reports every failure,
//! panics included. (Release builds abort on panic, `panic = "abort"`; the reporting matters in tests
//! and debug builds.)

use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::{Doorbell, DoorbellError};

/// The error type a shard body may return.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Bound on CPU numbers a shard may be pinned to (`CPU_SETSIZE` of the affinity syscalls), and on
/// the number of shards: more shards than that many CPUs is a configuration error.
const PIN_CORE_LIMIT: usize = 1024;

/// A group-wide request to stop: a flag every shard loop checks once per iteration, plus a ring of
/// every shard's doorbell so parked shards see it at once.
#[derive(Debug, Clone)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

#[derive(Debug)]
struct StopInner {
    requested: AtomicBool,
    doorbells: Vec<Arc<Doorbell>>,
}

impl StopSignal {
    /// A signal that, when requested, rings each of `doorbells`.
    pub fn new(doorbells: Vec<Arc<Doorbell>>) -> Self {
        Self {
            inner: Arc::new(StopInner {
                requested: AtomicBool::new(false),
                doorbells,
            }),
        }
    }

    /// Asks every shard to stop; idempotent.
    pub fn request(&self) {
        // Release pairs with the Acquire in `is_requested`: whatever the requester wrote before
        // asking is visible to a shard that sees the request.
        self.inner.requested.store(true, Ordering::Release);
        // Unconditional rings: the eventfd stays readable, so a shard that is about to park (flag
        // not yet raised) wakes at once instead of sleeping through the request.
        for doorbell in &self.inner.doorbells {
            doorbell.ring();
        }
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::Acquire)
    }
}

/// What a shard body knows about itself.
#[derive(Debug, Clone)]
pub struct ShardContext {
    /// The shard's number, `0..count`.
    pub index: usize,
    /// The core the thread is pinned to, or `None` when unpinned.
    pub core: Option<usize>,
    /// This shard's doorbell (the one its inbound mailboxes ring).
    pub doorbell: Arc<Doorbell>,
    /// The group's stop signal: pass it to [`run_loop`](super::run_loop).
    pub stop: StopSignal,
}

/// Why shards could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A group needs at least one shard.
    #[error("shard count is 0; configure at least one shard")]
    NoShards,
    /// More shards than CPUs the affinity API can name.
    #[error("shard count {count} is above the limit of {limit}; configure one shard per core")]
    TooManyShards {
        /// Shards requested.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Pinning was asked for but the core list does not have one core per shard.
    #[error(
        "{count} shards need {count} cores to pin to, but {cores} were given; \
         list one core per shard or turn pinning off"
    )]
    CoreCount {
        /// Shards requested.
        count: usize,
        /// Cores given.
        cores: usize,
    },
    /// The same core appears twice in the core list.
    #[error("core {core} is listed for two shards; each shard needs a core of its own")]
    DuplicateCore {
        /// The repeated core.
        core: usize,
    },
    /// A core number the affinity syscalls cannot express.
    #[error(
        "core {core} is beyond the highest pinnable CPU number ({limit}); check the core list"
    )]
    CoreOutOfRange {
        /// The rejected core.
        core: usize,
        /// The limit.
        limit: usize,
    },
    /// `init` values do not match the shard count.
    #[error("{count} shards but {inits} init values; pass exactly one per shard")]
    InitCount {
        /// Shards set up.
        count: usize,
        /// Init values given.
        inits: usize,
    },
    /// A shard's doorbell could not be created.
    #[error(transparent)]
    Doorbell(#[from] DoorbellError),
    /// The OS refused to start a thread.
    #[error("cannot start thread aurora-shard-{shard}: {source}")]
    Thread {
        /// Shard number.
        shard: usize,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A thread could not be pinned (the core is offline or outside this process's CPU set).
    #[error(
        "cannot pin shard {shard} to core {core}: the core is offline or not in this process's \
         allowed CPUs (see `taskset -p $$`); pick cores from the allowed set"
    )]
    Pin {
        /// Shard number.
        shard: usize,
        /// The core it was to run on.
        core: usize,
    },
}

/// How one shard ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The body returned an error.
    #[error("shard {shard} failed: {source}")]
    Failed {
        /// Shard number.
        shard: usize,
        /// The body's error.
        source: BoxError,
    },
    /// The body panicked.
    #[error("shard {shard} panicked: {message}")]
    Panicked {
        /// Shard number.
        shard: usize,
        /// The panic payload, if it was a string.
        message: String,
    },
}

/// Every shard that failed in a group, in shard order.
#[derive(Debug, thiserror::Error)]
#[error("{} shard(s) failed: {}", failures.len(), list(failures))]
pub struct ShardFailures {
    /// One entry per failed shard.
    pub failures: Vec<ShardError>,
}

fn list(failures: &[ShardError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shards configured but not started: the doorbells exist so mailboxes can be wired.
#[derive(Debug)]
pub struct ShardSetup {
    cores: Vec<Option<usize>>,
    doorbells: Vec<Arc<Doorbell>>,
}

impl ShardSetup {
    /// `count` shards; pinned to `pin_cores[i]` when given (one distinct core per shard, e.g. from
    /// [`Topology::plan_shards`](super::Topology::plan_shards)), left to the scheduler otherwise.
    pub fn new(count: usize, pin_cores: Option<&[usize]>) -> Result<Self, SpawnError> {
        if count == 0 {
            return Err(SpawnError::NoShards);
        }
        if count > PIN_CORE_LIMIT {
            return Err(SpawnError::TooManyShards {
                count,
                limit: PIN_CORE_LIMIT,
            });
        }
        let cores = match pin_cores {
            None => vec![None; count],
            Some(list) => {
                if list.len() != count {
                    return Err(SpawnError::CoreCount {
                        count,
                        cores: list.len(),
                    });
                }
                for (i, &core) in list.iter().enumerate() {
                    if core >= PIN_CORE_LIMIT {
                        return Err(SpawnError::CoreOutOfRange {
                            core,
                            limit: PIN_CORE_LIMIT - 1,
                        });
                    }
                    if list[..i].contains(&core) {
                        return Err(SpawnError::DuplicateCore { core });
                    }
                }
                list.iter().copied().map(Some).collect()
            }
        };
        let doorbells = (0..count)
            .map(|_| Doorbell::new().map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { cores, doorbells })
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.cores.len()
    }

    /// Shard `index`'s doorbell, for building mailboxes into that shard.
    ///
    /// # Panics
    /// If `index >= count()`: a wiring bug, not input.
    pub fn doorbell(&self, index: usize) -> &Arc<Doorbell> {
        &self.doorbells[index]
    }

    /// Starts the shards. Shard `i` runs `body(context_i, inits[i])` on its own thread after every
    /// shard has been pinned; if any pin fails, no body runs and the error is returned.
    pub fn spawn<I, T, E, F>(self, inits: Vec<I>, body: F) -> Result<ShardGroup<T>, SpawnError>
    where
        I: Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
        F: Fn(ShardContext, I) -> Result<T, E> + Send + Sync + 'static,
    {
        let count = self.count();
        if inits.len() != count {
            return Err(SpawnError::InitCount {
                count,
                inits: inits.len(),
            });
        }
        let stop = StopSignal::new(self.doorbells.clone());
        let body = Arc::new(body);
        // Every thread reports its pin result, then waits for a go (or, if its go sender is
        // dropped, gives up without running the body).
        let (pinned_tx, pinned_rx) = mpsc::channel::<(usize, bool)>();
        let mut handles = Vec::with_capacity(count);
        let mut go_senders = Vec::with_capacity(count);
        for (index, init) in inits.into_iter().enumerate() {
            let (go_tx, go_rx) = mpsc::sync_channel::<()>(1);
            let thread = ShardThread {
                context: ShardContext {
                    index,
                    core: self.cores[index],
                    doorbell: Arc::clone(&self.doorbells[index]),
                    stop: stop.clone(),
                },
                body: Arc::clone(&body),
                pinned_tx: pinned_tx.clone(),
                go_rx,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("aurora-shard-{index}"))
                .spawn(move || thread.run(init));
            match spawned {
                Ok(handle) => {
                    handles.push(handle);
                    go_senders.push(go_tx);
                }
                Err(source) => {
                    drop(go_senders);
                    join_unstarted(handles);
                    return Err(SpawnError::Thread {
                        shard: index,
                        source,
                    });
                }
            }
        }
        drop(pinned_tx);

        let mut first_pin_failure: Option<(usize, usize)> = None;
        for _ in 0..count {
            let (index, pinned) = pinned_rx
                .recv()
                .expect("every shard thread reports its pin result before waiting for a go");
            if !pinned && first_pin_failure.is_none_or(|(first, _)| index < first) {
                let core = self.cores[index].expect("only a shard with a core can fail to pin");
                first_pin_failure = Some((index, core));
            }
        }
        if let Some((shard, core)) = first_pin_failure {
            drop(go_senders);
            join_unstarted(handles);
            return Err(SpawnError::Pin { shard, core });
        }
        for go in go_senders {
            go.send(())
                .expect("a shard thread waits for its go before anything else can end it");
        }
        Ok(ShardGroup {
            handles,
            stop,
            doorbells: self.doorbells,
        })
    }
}

/// Joins threads told not to start (their go sender was dropped); their results carry nothing.
fn join_unstarted<T>(handles: Vec<JoinHandle<Result<T, ShardError>>>) {
    for handle in handles {
        let _ = handle.join();
    }
}

/// Everything one shard thread owns.
struct ShardThread<F> {
    context: ShardContext,
    body: Arc<F>,
    pinned_tx: mpsc::Sender<(usize, bool)>,
    go_rx: mpsc::Receiver<()>,
}

impl<F> ShardThread<F> {
    fn run<I, T, E>(self, init: I) -> Result<T, ShardError>
    where
        E: Into<BoxError>,
        F: Fn(ShardContext, I) -> Result<T, E>,
    {
        let index = self.context.index;
        let pinned = self
            .context
            .core
            .is_none_or(|core| core_affinity::set_for_current(core_affinity::CoreId { id: core }));
        // The spawner holds the receiver until every shard has reported.
        let _ = self.pinned_tx.send((index, pinned));
        drop(self.pinned_tx);
        if self.go_rx.recv().is_err() {
            // Start-up failed (this or another shard); `spawn` reports why. The body never ran.
            return Err(ShardError::Failed {
                shard: index,
                source: "shard start-up aborted before the body ran".into(),
            });
        }
        let stop_on_failure = StopOnAbnormalExit {
            stop: self.context.stop.clone(),
            armed: true,
        };
        let result = (self.body)(self.context, init).map_err(|error| ShardError::Failed {
            shard: index,
            source: error.into(),
        });
        stop_on_failure.finish(result.is_ok());
        result
    }
}

/// Requests a group stop when a shard body fails or unwinds, so siblings do not wait for it forever.
struct StopOnAbnormalExit {
    stop: StopSignal,
    armed: bool,
}

impl StopOnAbnormalExit {
    /// Ends the guard: a failed body requests the stop now, a successful one does not.
    fn finish(mut self, ok: bool) {
        self.armed = !ok;
    }
}

impl Drop for StopOnAbnormalExit {
    fn drop(&mut self) {
        if self.armed {
            self.stop.request();
        }
    }
}

/// Running shards. Join them with [`join`](Self::join); dropping the group requests a stop and joins
/// too, logging failures it cannot return.
#[derive(Debug)]
#[must_use = "join the shards to learn whether they failed"]
pub struct ShardGroup<T> {
    handles: Vec<JoinHandle<Result<T, ShardError>>>,
    stop: StopSignal,
    doorbells: Vec<Arc<Doorbell>>,
}

impl<T> ShardGroup<T> {
    /// Number of shards.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Shard `index`'s doorbell.
    ///
    /// # Panics
    /// If `index >= count()`.
    pub fn doorbell(&self, index: usize) -> &Arc<Doorbell> {
        &self.doorbells[index]
    }

    /// The group's stop signal (clone it to stop the group from elsewhere, e.g. a signal handler
    /// thread).
    pub fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }

    /// Asks every shard to leave its loop.
    pub fn request_stop(&self) {
        self.stop.request();
    }

    /// Waits for every shard to end; returns their results in shard order, or every failure.
    pub fn join(mut self) -> Result<Vec<T>, ShardFailures> {
        let handles = std::mem::take(&mut self.handles);
        let mut outputs = Vec::with_capacity(handles.len());
        let mut failures = Vec::new();
        for (shard, handle) in handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(output)) => outputs.push(output),
                Ok(Err(error)) => failures.push(error),
                Err(payload) => failures.push(ShardError::Panicked {
                    shard,
                    message: panic_message(payload.as_ref()),
                }),
            }
        }
        if failures.is_empty() {
            Ok(outputs)
        } else {
            Err(ShardFailures { failures })
        }
    }
}

impl<T> Drop for ShardGroup<T> {
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        self.stop.request();
        for (shard, handle) in std::mem::take(&mut self.handles).into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::error!(%error, "shard failed (group dropped unjoined)"),
                Err(payload) => tracing::error!(
                    shard,
                    message = panic_message(payload.as_ref()),
                    "shard panicked (group dropped unjoined)"
                ),
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
