//! The source of an upload: a reader, a file or a buffer, read in pieces and hashed, with a
//! position that can go back to any byte the registry has not confirmed yet.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::Path;

use azure_core::error::ErrorKind;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use super::session::Failure;
use crate::content::Hasher;
use crate::error::protocol_error;

/// Bytes read, hashed and handed to the connection at a time.
pub(super) const PIECE_SIZE: usize = 1024 * 1024;

/// The most piece buffers a stream keeps for reuse.
const MAX_SPARE_BUFFERS: usize = 64;

/// Where the bytes come from, with a position that can go back to any byte not yet confirmed.
pub(super) enum Source<R> {
    /// Any reader: read once. The bytes from `kept_start` on are kept so that they can be read
    /// again; [`Source::forget_before`] drops what the registry has confirmed.
    Reader {
        reader: R,
        kept: VecDeque<Bytes>,
        kept_start: u64,
        pos: u64,
        eof: bool,
        /// Buffers of confirmed pieces, reused for the next reads (fresh allocations would be
        /// returned to the system and faulted in again for every request).
        spare: Vec<BytesMut>,
    },
    /// A file of known size: read again by seeking.
    File {
        file: tokio::fs::File,
        size: u64,
        pos: u64,
    },
    /// A buffer.
    Bytes { data: Bytes, pos: u64 },
}

impl<R: AsyncRead + Unpin> Source<R> {
    pub(super) fn reader(reader: R) -> Self {
        Self::Reader {
            reader,
            kept: VecDeque::new(),
            kept_start: 0,
            pos: 0,
            eof: false,
            spare: Vec::new(),
        }
    }

    /// The total size, when known before reading.
    pub(super) fn len(&self) -> Option<u64> {
        match self {
            Self::Reader { .. } => None,
            Self::File { size, .. } => Some(*size),
            Self::Bytes { data, .. } => Some(data.len() as u64),
        }
    }

    /// Reads up to `max` bytes (at least 1); an empty piece only at the end.
    pub(super) async fn read_piece(&mut self, max: usize) -> std::io::Result<Bytes> {
        match self {
            Self::Bytes { data, pos } => {
                let start = (*pos as usize).min(data.len());
                let end = start.saturating_add(max).min(data.len());
                *pos = end as u64;
                Ok(data.slice(start..end))
            }
            Self::File { file, size, pos } => {
                let want = (*size - *pos).min(max as u64) as usize;
                if want == 0 {
                    return Ok(Bytes::new());
                }
                let piece = fill(file, BytesMut::new(), want).await?;
                if piece.len() < want {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file became shorter while it was uploaded",
                    ));
                }
                *pos += piece.len() as u64;
                Ok(piece)
            }
            Self::Reader {
                reader,
                kept,
                kept_start,
                pos,
                eof,
                spare,
            } => {
                // Bytes kept from an earlier read come first.
                let mut start = *kept_start;
                for piece in kept.iter() {
                    let end = start + piece.len() as u64;
                    if *pos < end {
                        let from = (*pos - start) as usize;
                        let to = piece.len().min(from.saturating_add(max));
                        *pos += (to - from) as u64;
                        return Ok(piece.slice(from..to));
                    }
                    start = end;
                }
                if *eof {
                    return Ok(Bytes::new());
                }
                let buffer = spare.pop().unwrap_or_default();
                let piece = fill(reader, buffer, max).await?;
                if piece.len() < max {
                    *eof = true;
                }
                if !piece.is_empty() {
                    *pos += piece.len() as u64;
                    kept.push_back(piece.clone());
                }
                Ok(piece)
            }
        }
    }

    /// Goes to byte `to`; `false` when a stream no longer has that byte.
    pub(super) async fn seek(&mut self, to: u64) -> std::io::Result<bool> {
        match self {
            Self::Bytes { data, pos } => {
                *pos = to.min(data.len() as u64);
                Ok(to <= data.len() as u64)
            }
            Self::File { file, size, pos } => {
                if to > *size {
                    return Ok(false);
                }
                file.seek(SeekFrom::Start(to)).await?;
                *pos = to;
                Ok(true)
            }
            Self::Reader {
                kept,
                kept_start,
                pos,
                ..
            } => {
                let kept_end = *kept_start + kept.iter().map(|p| p.len() as u64).sum::<u64>();
                if to < *kept_start || to > kept_end {
                    return Ok(false);
                }
                *pos = to;
                Ok(true)
            }
        }
    }

    /// Drops kept stream bytes before `at` (the registry has them).
    pub(super) fn forget_before(&mut self, at: u64) {
        if let Self::Reader {
            kept,
            kept_start,
            spare,
            ..
        } = self
        {
            while let Some(front) = kept.front() {
                let end = *kept_start + front.len() as u64;
                if end > at {
                    break;
                }
                *kept_start = end;
                if let Some(Ok(mut buffer)) = kept.pop_front().map(Bytes::try_into_mut) {
                    if spare.len() < MAX_SPARE_BUFFERS {
                        buffer.clear();
                        spare.push(buffer);
                    }
                }
            }
        }
    }
}

/// Reads up to `max` bytes into `buf` (emptied first); fewer only at the end.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: BytesMut,
    max: usize,
) -> std::io::Result<Bytes> {
    buf.clear();
    buf.reserve(max);
    let mut limited = reader.take(max as u64);
    while buf.len() < max {
        if limited.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// An I/O failure of the source.
pub(super) fn io_error(e: std::io::Error) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Io, e)
}

/// What to hash before (or while) sending, to ask the registry whether it has the blob.
pub(super) enum PreHash {
    /// A file, read again on a blocking thread.
    File(std::path::PathBuf),
    /// A buffer.
    Bytes(Bytes),
}

/// A digest being computed on a blocking thread, awaited by both the existence check and the
/// commit.
pub(super) type SharedDigest =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<String, String>>>;

impl PreHash {
    /// Starts hashing on a blocking thread.
    pub(super) fn spawn(self) -> SharedDigest {
        use futures::FutureExt as _;
        let task = tokio::task::spawn_blocking(move || match self {
            Self::Bytes(data) => Ok(crate::reference::sha256_digest(&data)),
            Self::File(path) => hash_file(&path).map_err(|e| format!("{}: {e}", path.display())),
        });
        async move { task.await.map_err(|e| format!("hashing failed: {e}"))? }
            .boxed()
            .shared()
    }
}

/// The sha256 digest of a file's content.
fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::sha256();
    let mut buf = vec![0u8; PIECE_SIZE];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// The error of a failed hash of the source.
pub(super) fn hash_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Io, message)
}

/// Moves the source to byte `at`; a stream always still has the bytes from the registry's
/// offset on.
pub(super) async fn seek_to<R: AsyncRead + Unpin>(
    source: &mut Source<R>,
    at: u64,
) -> Result<(), Failure> {
    if source
        .seek(at)
        .await
        .map_err(|e| Failure::Fatal(io_error(e)))?
    {
        Ok(())
    } else {
        Err(Failure::Fatal(protocol_error(format!(
            "the stream no longer has byte {at}"
        ))))
    }
}

/// Reads the next `len` bytes of the source into `hasher` (bytes the registry already has).
pub(super) async fn hash_through<R: AsyncRead + Unpin>(
    source: &mut Source<R>,
    hasher: &mut Hasher,
    len: u64,
) -> Result<(), Failure> {
    let mut remaining = len;
    while remaining > 0 {
        let piece = source
            .read_piece(piece_len(remaining))
            .await
            .map_err(|e| Failure::Fatal(io_error(e)))?;
        if piece.is_empty() {
            return Err(Failure::Fatal(io_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the source ended early when read again",
            ))));
        }
        hasher.update(&piece);
        remaining -= piece.len() as u64;
    }
    Ok(())
}

/// The size of the next piece when `remaining` bytes are wanted.
pub(super) fn piece_len(remaining: u64) -> usize {
    remaining.min(PIECE_SIZE as u64) as usize
}

/// Reads the source to its end if it has at most `max` bytes and returns them; otherwise goes
/// back to the first byte and returns `None`.
pub(super) async fn read_whole_if_at_most<R: AsyncRead + Unpin>(
    source: &mut Source<R>,
    max: u64,
) -> azure_core::Result<Option<Bytes>> {
    if let Source::Bytes { data, .. } = source {
        return Ok((data.len() as u64 <= max).then(|| data.clone()));
    }
    let mut pieces = Vec::new();
    let mut read = 0u64;
    loop {
        // One byte more than `max` tells whether there is more.
        let piece = source
            .read_piece(piece_len(max + 1 - read))
            .await
            .map_err(io_error)?;
        if piece.is_empty() {
            break;
        }
        read += piece.len() as u64;
        pieces.push(piece);
        if read > max {
            if !source.seek(0).await.map_err(io_error)? {
                return Err(protocol_error("the stream cannot go back to its start"));
            }
            return Ok(None);
        }
    }
    Ok(Some(match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.remove(0),
        _ => {
            let mut whole = BytesMut::with_capacity(read as usize);
            for piece in pieces {
                whole.extend_from_slice(&piece);
            }
            whole.freeze()
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_keeps_what_is_not_confirmed() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut s = Source::reader(&data[..]);
        assert_eq!(s.len(), None);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[0, 1, 2, 3]);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[4, 5, 6, 7]);
        // Back into the kept bytes, across pieces.
        assert!(s.seek(2).await.unwrap());
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[2, 3]);
        assert_eq!(&s.read_piece(1).await.unwrap()[..], &[4]);
        assert_eq!(&s.read_piece(8).await.unwrap()[..], &[5, 6, 7]);
        assert_eq!(&s.read_piece(4).await.unwrap()[..], &[8, 9]);
        assert!(s.read_piece(4).await.unwrap().is_empty());
        // Confirmed bytes are dropped; only whole pieces go.
        s.forget_before(5);
        assert!(!s.seek(3).await.unwrap());
        assert!(s.seek(4).await.unwrap());
        assert_eq!(&s.read_piece(2).await.unwrap()[..], &[4, 5]);
        assert!(!s.seek(11).await.unwrap());
    }

    #[tokio::test]
    async fn a_buffer_reads_again_from_anywhere() {
        let mut s = Source::<tokio::io::Empty>::Bytes {
            data: Bytes::from_static(b"abcdef"),
            pos: 0,
        };
        assert_eq!(s.len(), Some(6));
        assert_eq!(&s.read_piece(4).await.unwrap()[..], b"abcd");
        assert!(s.seek(1).await.unwrap());
        assert_eq!(&s.read_piece(9).await.unwrap()[..], b"bcdef");
        assert!(s.read_piece(9).await.unwrap().is_empty());
        assert!(!s.seek(7).await.unwrap());
    }

    #[tokio::test]
    async fn a_file_that_shrinks_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123").unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        // Its size was taken as 6 bytes, but it has 4.
        let mut s = Source::<tokio::io::Empty>::File {
            file,
            size: 6,
            pos: 0,
        };
        let e = s.read_piece(6).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn whole_only_when_small() {
        let data: Vec<u8> = (0..10u8).collect();
        let mut s = Source::reader(&data[..]);
        assert!(read_whole_if_at_most(&mut s, 9).await.unwrap().is_none());
        // Back at the start, nothing lost.
        assert_eq!(&s.read_piece(10).await.unwrap()[..], &data[..]);
        let mut s = Source::reader(&data[..]);
        assert_eq!(
            read_whole_if_at_most(&mut s, 10).await.unwrap().as_deref(),
            Some(&data[..])
        );
    }
}
