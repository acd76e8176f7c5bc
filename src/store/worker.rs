//! The store's own thread. It owns the backend and runs the jobs sent to it
//! one at a time, in order: the single writer, with no lock around it. An
//! async caller awaits its job's answer; a page crosses from the pass to the
//! store once. PostgreSQL's client runs on this thread's own runtime.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{Store, StoreError};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

pub struct Worker {
    /// `None` once dropped: the thread then ends and closes the store.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread that owns `store`.
    pub fn start(mut store: Store) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("oifde-store".into())
            .spawn(move || {
                for job in queue {
                    // A job that panics drops its answer: its caller panics,
                    // as it would have on its own thread; the store goes on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut store)));
                }
            })
            .expect("the store's thread starts");
        Self { jobs: Some(jobs), thread: Some(thread) }
    }

    /// Runs `f` on the store and waits for its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = answer.send(f(store));
        });
        self.jobs.as_ref().expect("present until drop").send(job).expect("the store's thread is running");
        answered.await.expect("store task panicked")
    }
}

impl Drop for Worker {
    /// Lets the jobs sent finish, then closes the store (its writer lock
    /// included) before returning.
    fn drop(&mut self) {
        drop(self.jobs.take());
        // Dropped by a job of its own (the last handle moved into it), the
        // thread ends by itself once the job returns.
        if let Some(thread) = self.thread.take().filter(|t| t.thread().id() != std::thread::current().id()) {
            let _ = thread.join();
        }
    }
}
