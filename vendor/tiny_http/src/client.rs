use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::io::Write;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Header, Method};
use crate::limits::{Limits, ReadClock};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // what the client may do (AgentFlow's patch)
    limits: Limits,

    // the deadlines of the read half
    clock: Arc<ReadClock>,

    // a handle on the socket for an orderly close after an error answer
    control: RefinedTcpStream,

    // bytes of the current request head read so far
    head_bytes: usize,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    // the head is larger than `Limits::max_head_bytes`
    HeadTooLarge,
    // two Content-Length headers, an invalid one, or one with Transfer-Encoding: where the body
    // ends is ambiguous (request smuggling), so the connection cannot be trusted further
    AmbiguousFraming(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn with_limits(
        write_socket: RefinedTcpStream,
        read_socket: RefinedTcpStream,
        limits: Limits,
    ) -> ClientConnection {
        let clock = ReadClock::new(&limits);
        let control = read_socket.control();
        let mut read_socket = read_socket.with_clock(clock.clone());
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            clock,
            control,
            head_bytes: 0,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    fn read_next_line(&mut self) -> Result<AsciiString, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(ReadError::ReadIoError)?,
                None => {
                    return Err(ReadError::ReadIoError(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "Unexpected EOF",
                    )))
                }
            };

            // the head is counted as it comes, so a giant header is refused after the limit,
            // not read whole into memory first
            self.head_bytes += 1;
            if self
                .limits
                .max_head_bytes
                .map_or(false, |max| self.head_bytes > max)
            {
                return Err(ReadError::HeadTooLarge);
            }

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf).map_err(|_| {
                    ReadError::ReadIoError(IoError::new(
                        ErrorKind::InvalidInput,
                        "Header is not in ASCII",
                    ))
                });
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                self.head_bytes = 0;
                self.clock.await_request();
                let line = self.read_next_line()?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line()?;

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            if ambiguous_framing(&headers) {
                return Err(ReadError::AmbiguousFraming(version));
            }

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::HeadTooLarge) => {
                    self.refuse(431, HTTPVersion(1, 1));
                    return None;
                }

                Err(ReadError::AmbiguousFraming(ver)) => {
                    self.refuse(400, ver);
                    return None;
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout; an idle keep-alive that times out before its next
                    // request began is closed without a word
                    if self.head_bytes > 0 {
                        self.refuse(408, HTTPVersion(1, 1));
                    }
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
impl ClientConnection {
    /// Answers `status`, then closes in an orderly way: FIN first, then
    /// a short drain of what the client is still sending (bounded in time and bytes), so that
    /// closing with unread input does not reset the connection before the client reads the answer.
    fn refuse(&mut self, status: u16, ver: HTTPVersion) {
        use crate::{Response, StatusCode};
        let mut writer = self.sink.next().unwrap();
        let response = Response::new_empty(StatusCode(status));
        let ok = response
            .raw_print(&mut writer, ver, &[], false, None)
            .is_ok();
        if !ok || writer.flush().is_err() {
            return;
        }
        drop(writer);
        self.control.shutdown_write();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut drained = 0usize;
        let mut buf = [0u8; 16 * 1024];
        while drained < 4 << 20 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.control
                .set_read_timeout(left.max(Duration::from_millis(1)));
            match self.control.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
}

/// Whether the request's framing is ambiguous: several Content-Length headers (even equal ones),
/// one that is not a number, or Content-Length together with Transfer-Encoding (RFC 9112 6.3:
/// a server ought to treat that as an error, and must close the connection after it).
fn ambiguous_framing(headers: &[Header]) -> bool {
    let lengths: Vec<&Header> = headers
        .iter()
        .filter(|h| h.field.equiv("Content-Length"))
        .collect();
    let encoded = headers.iter().any(|h| h.field.equiv("Transfer-Encoding"));
    let valid = |h: &&Header| {
        let v = h.value.as_str().trim();
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<usize>().is_ok()
    };
    lengths.len() > 1 || (encoded && !lengths.is_empty()) || !lengths.iter().all(valid)
}

fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}

/// AgentFlow's patch: properties of the head's parsers, over generated input.
#[cfg(test)]
mod head_props {
    use super::{ambiguous_framing, parse_http_version, parse_request_line};
    use crate::{HTTPVersion, Header, Method};
    use proptest::prelude::*;

    fn header(name: &str, value: &str) -> Header {
        format!("{name}: {value}").parse().unwrap()
    }

    /// A framing header, or another one, with a value that is a number or not.
    fn framing_header() -> impl Strategy<Value = Header> {
        let name = prop_oneof![
            Just("Content-Length"),
            Just("content-length"),
            Just("CONTENT-LENGTH"),
            Just("Transfer-Encoding"),
            Just("X-Other"),
        ];
        let value = prop_oneof!["[0-9]{1,6}", "[0-9]{25}", "[ -~]{0,12}"];
        (name, value).prop_map(|(n, v)| header(n, &v))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn a_request_line_is_parsed_exactly_or_refused(line in "\\PC{0,60}") {
            if let Ok((method, path, version)) = parse_request_line(&line) {
                let mut parts = line.split(' ');
                prop_assert_eq!(parts.next().unwrap(), method.as_str());
                prop_assert_eq!(parts.next().unwrap(), path.as_str());
                prop_assert_eq!(parse_http_version(parts.next().unwrap()).ok(), Some(version));
            }
        }

        #[test]
        fn a_well_formed_request_line_is_read_back(
            method in prop_oneof![Just("GET".to_owned()), Just("PATCH".to_owned()), "[A-Z]{1,10}"],
            path in "/[!-~]{0,40}",
            version in prop_oneof![Just((1u8, 0u8)), Just((1, 1))],
        ) {
            let line = format!("{method} {path} HTTP/{}.{}", version.0, version.1);
            let (m, p, v) = parse_request_line(&line).unwrap();
            prop_assert_eq!(m, method.parse::<Method>().unwrap());
            prop_assert_eq!(p, path);
            prop_assert_eq!(v, HTTPVersion(version.0, version.1));
        }

        #[test]
        fn a_header_line_is_read_back(name in "[!-9;-~]{1,30}", value in "[!-~]([ -~]{0,60}[!-~])?") {
            let h: Header = format!("{name}:  {value} ").parse().unwrap();
            prop_assert_eq!(h.field.as_str().as_str(), name.as_str());
            prop_assert_eq!(h.value.as_str(), value.as_str());
        }

        #[test]
        fn framing_is_ambiguous_exactly_as_rfc_9112_says(headers in proptest::collection::vec(framing_header(), 0..5)) {
            let lengths: Vec<&Header> = headers.iter().filter(|h| h.field.equiv("content-length")).collect();
            let chunked = headers.iter().any(|h| h.field.equiv("transfer-encoding"));
            let number = |h: &&Header| {
                let v = h.value.as_str();
                !v.is_empty() && v.len() < 20 && v.bytes().all(|b| b.is_ascii_digit())
            };
            let expected = lengths.len() > 1 || (chunked && !lengths.is_empty()) || !lengths.iter().all(number);
            prop_assert_eq!(ambiguous_framing(&headers), expected, "{:?}", headers);
            // The order of the headers never matters.
            let mut reversed = headers.clone();
            reversed.reverse();
            prop_assert_eq!(ambiguous_framing(&reversed), expected);
        }
    }
}
