//! Writing a stream of chunks to a file: chunks are gathered into large buffers, each written
//! on a blocking thread while the next one fills (one write in flight, two buffers in all).
//!
//! Network chunks are small (kilobytes to a few hundred); writing each on its own would cost a
//! thread hand-off per chunk and keep the connection's buffers alive longer.

use std::io::Write;

use tokio::task::JoinHandle;

/// What a finished write hands back: the file and the buffer, for the next write.
type Written = std::io::Result<(std::fs::File, Vec<u8>)>;

/// A file written from async code in large writes on blocking threads.
pub(crate) struct FileWriter {
    /// The file, when no write is in flight.
    file: Option<std::fs::File>,
    /// The buffer being filled.
    buf: Vec<u8>,
    /// The buffer of the last finished write, emptied, for reuse.
    spare: Option<Vec<u8>>,
    /// The write in flight.
    pending: Option<JoinHandle<Written>>,
    capacity: usize,
}

impl FileWriter {
    /// Writes to `file` in writes of `capacity` bytes.
    pub(crate) fn new(file: std::fs::File, capacity: usize) -> Self {
        Self {
            file: Some(file),
            buf: Vec::with_capacity(capacity),
            spare: None,
            pending: None,
            capacity: capacity.max(1),
        }
    }

    /// Appends `data` (copied; a full buffer goes to a blocking thread).
    pub(crate) async fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let take = (self.capacity - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.capacity {
                self.hand_off().await?;
            }
        }
        Ok(())
    }

    /// Writes what is left, syncs the file to storage and closes it.
    pub(crate) async fn finish(mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_off().await?;
        }
        let file = self.take_file().await?;
        run_blocking(move || file.sync_all()).await
    }

    /// Waits for the write in flight, so that the file is closed when this returns.
    pub(crate) async fn abandon(mut self) {
        let _ = self.take_file().await;
    }

    /// The file, once no write is in flight (the buffer of that write becomes the spare).
    async fn take_file(&mut self) -> std::io::Result<std::fs::File> {
        if let Some(pending) = self.pending.take() {
            let (file, mut buf) = pending.await.map_err(std::io::Error::other)??;
            buf.clear();
            self.spare = Some(buf);
            return Ok(file);
        }
        self.file
            .take()
            .ok_or_else(|| std::io::Error::other("the file was lost after a failed write"))
    }

    /// Sends the filled buffer to a blocking thread, after the previous write finished.
    async fn hand_off(&mut self) -> std::io::Result<()> {
        let mut file = self.take_file().await?;
        let next = self
            .spare
            .take()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity));
        let full = std::mem::replace(&mut self.buf, next);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            file.write_all(&full)?;
            Ok((file, full))
        }));
        Ok(())
    }
}

async fn run_blocking(
    f: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = FileWriter::new(file, 7);
        let mut expected = Vec::new();
        for i in 0..50u8 {
            let chunk: Vec<u8> = (0..(i % 11)).map(|j| i ^ j).collect();
            writer.write(&chunk).await.unwrap();
            expected.extend_from_slice(&chunk);
        }
        writer.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        // Opened read-only: every write fails.
        let file = std::fs::File::open(&path).unwrap();
        let mut writer = FileWriter::new(file, 4);
        let first = writer.write(b"0123456789").await;
        let result = match first {
            Err(e) => Err(e),
            Ok(()) => writer.finish().await,
        };
        assert!(result.is_err());
    }
}
