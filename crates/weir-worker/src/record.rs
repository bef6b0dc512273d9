//! The store writes of tries that start or end together, in one statement or transaction:
//! a fan-out of short tasks ends hundreds of tries a second, and a transaction per finish
//! and a statement per pid were most of the worker's store round trips.
//!
//! Nothing waits to fill a batch: the recorder writes whatever has arrived since its last
//! write, so a lone finish (a chain) is written at once, and finishes that arrive while a
//! write is in flight go together in the next.

use tokio::sync::{mpsc, oneshot};
use weir_store::{Finish, Finished, Store};

/// The most writes that go in one batch.
const BATCH: usize = 256;

enum Write {
    /// A try's process group, for the reaper of a dead worker.
    Pid {
        ti_id: i64,
        try_number: i64,
        pid: i64,
    },
    /// A try's outcome, a compare-and-set from `running` on `worker`.
    Finish {
        worker: String,
        finish: Box<Finish>,
        done: oneshot::Sender<Result<Finished, String>>,
    },
}

/// Hands writes to the recorder task, which batches them.
pub(crate) struct Recorder {
    writes: mpsc::UnboundedSender<Write>,
}

impl Recorder {
    /// Starts the recorder task on the current runtime; it ends when the recorder is dropped.
    pub(crate) fn start(store: Store) -> Recorder {
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(record(store, queue));
        Recorder { writes }
    }

    /// Records a try's process group soon; the caller does not wait for it.
    pub(crate) fn pid(&self, ti_id: i64, try_number: i64, pid: i64) {
        let _ = self.writes.send(Write::Pid {
            ti_id,
            try_number,
            pid,
        });
    }

    /// Records a try's outcome, as [`Store::finish`] does for one.
    pub(crate) async fn finish(&self, worker: String, finish: Finish) -> Result<Finished, String> {
        let (done, answer) = oneshot::channel();
        self.writes
            .send(Write::Finish {
                worker,
                finish: Box::new(finish),
                done,
            })
            .map_err(|_| "the worker's recorder has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the worker's recorder has stopped".to_string())?
    }
}

async fn record(store: Store, mut queue: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut pids = Vec::new();
        // By worker id: a worker that lost its lease finishes under its old id and its new.
        let mut finishes: Vec<(String, Vec<Finish>, Vec<oneshot::Sender<_>>)> = Vec::new();
        for write in batch.drain(..) {
            match write {
                Write::Pid {
                    ti_id,
                    try_number,
                    pid,
                } => pids.push((ti_id, try_number, pid)),
                Write::Finish {
                    worker,
                    finish,
                    done,
                } => match finishes.iter_mut().find(|(w, _, _)| *w == worker) {
                    Some((_, list, answers)) => {
                        list.push(*finish);
                        answers.push(done);
                    }
                    None => finishes.push((worker, vec![*finish], vec![done])),
                },
            }
        }
        // Pids first, as they arrived: a try's pid is sent before its finish, and a try that
        // already finished keeps none (the update asks for `running`).
        if !pids.is_empty()
            && let Err(e) = store.set_pids(&pids).await
        {
            tracing::warn!("cannot record the pids of {} tries: {e}", pids.len());
        }
        for (worker, list, answers) in finishes {
            match store.finish(&worker, &list).await {
                Ok(done) => {
                    for (answer, finished) in answers.into_iter().zip(done) {
                        let _ = answer.send(Ok(finished));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for answer in answers {
                        let _ = answer.send(Err(message.clone()));
                    }
                }
            }
        }
    }
}
