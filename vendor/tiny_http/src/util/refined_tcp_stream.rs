use std::io::Result as IoResult;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};

use std::sync::Arc;

use crate::connection::Connection;
use crate::limits::{ReadClock, Slot};

/// A connection and the place it holds under the connection cap: the place is given back when
/// the descriptor is closed, i.e. when the last half of the connection is dropped.
pub(crate) struct Owned {
    conn: Connection,
    _slot: Option<Slot>,
}
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    Http(Arc<Owned>),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

impl Clone for Stream {
    fn clone(&self) -> Self {
        match self {
            // Both halves share the descriptor: no `dup`, which could fail with EMFILE (upstream
            // unwrapped it and panicked the accept thread).
            Stream::Http(owned) => Stream::Http(owned.clone()),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Stream::Https(ssl_stream.clone()),
        }
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(Arc::new(Owned {
            conn: tcp_stream,
            _slot: None,
        }))
    }
}

impl Stream {
    /// A connection that holds `slot` until its descriptor is closed.
    pub(crate) fn counted(conn: Connection, slot: Slot) -> Self {
        Stream::Http(Arc::new(Owned {
            conn,
            _slot: Some(slot),
        }))
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(owned) => owned.conn.peer_addr(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.peer_addr(),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(owned) => owned.conn.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(owned) => (&owned.conn).read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(owned) => (&owned.conn).write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(owned) => (&owned.conn).flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
    /// The deadline of the read half (none on the write half).
    clock: Option<Arc<ReadClock>>,
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(stream: S) -> (RefinedTcpStream, RefinedTcpStream)
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.clone(), stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
            clock: None,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
            clock: None,
        };

        (read, write)
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// Puts the reads of this half under `clock`'s deadlines.
    pub(crate) fn with_clock(mut self, clock: Arc<ReadClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A third handle on the connection that shuts nothing down when dropped: for closing it
    /// in an orderly way after an error answer.
    pub(crate) fn control(&self) -> RefinedTcpStream {
        RefinedTcpStream {
            stream: self.stream.clone(),
            close_read: false,
            close_write: false,
            clock: None,
        }
    }

    /// Sends FIN: the client sees the end of the answer even while we still drain its input.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).ok();
    }

    pub(crate) fn set_read_timeout(&self, t: std::time::Duration) {
        match &self.stream {
            Stream::Http(owned) => {
                owned.conn.set_read_timeout(Some(t)).ok();
            }
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => {}
        }
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let clock = match &self.clock {
            None => return self.stream.read(buf),
            Some(clock) => clock.clone(),
        };
        // The socket's own timeout is set to what is left before the deadline, so a client
        // trickling a byte at a time cannot stretch a request beyond it.
        match clock.remaining() {
            Some(left) if left.is_zero() => return Err(ReadClock::expired()),
            Some(left) => self.set_read_timeout(left.max(std::time::Duration::from_millis(1))),
            None => {}
        }
        match self.stream.read(buf) {
            Ok(n) => {
                clock.bytes_read(n);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(ReadClock::expired())
            }
            Err(e) => Err(e),
        }
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
