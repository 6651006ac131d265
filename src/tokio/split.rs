//! The halves of a [`TcpStream`], as tokio's: borrowed ([`TcpStream::split`]), to
//! read and write at once in one task, and owned ([`TcpStream::into_split`]), to
//! read in one task and write in another.

use super::TcpStream;
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use std::error::Error;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The reading half of a [`TcpStream`], borrowed by [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The writing half of a [`TcpStream`], borrowed by [`TcpStream::split`].
/// Shutting it down ([`AsyncWrite::poll_shutdown`]) shuts the stream down for
/// writing.
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The reading half of a [`TcpStream`], owned (from [`TcpStream::into_split`]).
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The writing half of a [`TcpStream`], owned (from [`TcpStream::into_split`]).
/// Dropping it shuts the stream down for writing, as tokio's does, unless
/// [`OwnedWriteHalf::forget`] was called.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
    shutdown_on_drop: bool,
}

/// The two owned halves [`OwnedReadHalf::reunite`] was given, which were not of
/// the same stream.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl Error for ReuniteError {}

pub(super) fn split(stream: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(stream), WriteHalf(stream))
}

pub(super) fn into_split(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let inner = Arc::new(stream);
    let read = OwnedReadHalf {
        inner: inner.clone(),
    };
    let write = OwnedWriteHalf {
        inner,
        shutdown_on_drop: true,
    };
    (read, write)
}

impl OwnedReadHalf {
    /// The stream again, from this half and `other`, if they are its two halves
    /// (else both back, in the error).
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if !Arc::ptr_eq(&self.inner, &other.inner) {
            return Err(ReuniteError(self, other));
        }
        let mut other = other;
        other.shutdown_on_drop = false;
        drop(other);
        // The two halves held the only references, and the other one is gone.
        Ok(Arc::try_unwrap(self.inner).expect("a stream's halves hold its only references"))
    }
}

impl OwnedWriteHalf {
    /// The stream again (see [`OwnedReadHalf::reunite`]).
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        other.reunite(self)
    }

    /// Drops this half without shutting the stream down for writing.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.shutdown_std(Shutdown::Write);
        }
    }
}

/// What a half reads and writes, and lends: the stream's own calls.
macro_rules! half_io {
    ($read:ty, $write:ty) => {
        impl AsyncRead for $read {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.stream().poll_read_priv(cx, buf)
            }
        }

        impl AsyncWrite for $write {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_vectored_priv(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shut_write())
            }
        }

        impl AsRef<TcpStream> for $read {
            fn as_ref(&self) -> &TcpStream {
                self.stream()
            }
        }

        impl AsRef<TcpStream> for $write {
            fn as_ref(&self) -> &TcpStream {
                self.stream()
            }
        }
    };
}

impl ReadHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }
}

impl WriteHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }

    fn shut_write(self: Pin<&mut Self>) -> io::Result<()> {
        self.0.shutdown_std(Shutdown::Write)
    }
}

impl OwnedReadHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }
}

impl OwnedWriteHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }

    fn shut_write(self: Pin<&mut Self>) -> io::Result<()> {
        let this = self.get_mut();
        this.inner.shutdown_std(Shutdown::Write)?;
        // Shut already: nothing to do when dropped.
        this.shutdown_on_drop = false;
        Ok(())
    }
}

half_io!(ReadHalf<'_>, WriteHalf<'_>);
half_io!(OwnedReadHalf, OwnedWriteHalf);
