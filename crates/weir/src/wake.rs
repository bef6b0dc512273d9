//! Cross-process wake-ups on one host: a CLI command that changed state (a trigger, a clear)
//! pokes the schedulers of the same project so that they act now instead of at their next
//! poll. Each long-running scheduler listens on its own datagram socket in `.weir/wake/`; a
//! poke sends one byte to each. Best effort by design: polling stays the guarantee, a poke
//! only shortens the wait (a scheduler on another host, or a socket path too long for the
//! platform, simply waits for its poll).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("wake")
}

/// Listens for pokes until the returned guard is dropped, waking `notify` for each. `None`
/// when the socket cannot be made (the scheduler then relies on polling alone).
pub fn listen(state_dir: &Path, notify: Arc<Notify>) -> Option<Listener> {
    let dir = dir(state_dir);
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let socket = tokio::net::UnixDatagram::bind(&path).ok()?;
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        while socket.recv(&mut buf).await.is_ok() {
            notify.notify_one();
        }
    });
    Some(Listener { path, task })
}

/// A scheduler's wake socket; removed when dropped.
pub struct Listener {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Pokes every scheduler listening for this project; removes sockets nobody listens on (a
/// scheduler that was killed).
pub fn poke(state_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return;
    };
    let Ok(sender) = UnixDatagram::unbound() else {
        return;
    };
    let _ = sender.set_nonblocking(true);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "sock") {
            continue;
        }
        if let Err(e) = sender.send_to(&[1], &path)
            && e.kind() == std::io::ErrorKind::ConnectionRefused
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_poke_wakes_the_listener_and_a_dead_socket_is_removed() {
        let state = tempfile::tempdir().unwrap();
        let notify = Arc::new(Notify::new());
        let listener = listen(state.path(), notify.clone()).expect("socket");
        let dead = dir(state.path()).join("1.sock");
        drop(UnixDatagram::bind(&dead).unwrap());
        poke(state.path());
        tokio::time::timeout(std::time::Duration::from_secs(5), notify.notified())
            .await
            .expect("the poke wakes the scheduler");
        assert!(!dead.exists(), "nobody listens there: removed");
        drop(listener);
        assert_eq!(std::fs::read_dir(dir(state.path())).unwrap().count(), 0);
    }
}
