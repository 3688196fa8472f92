//! Reading trace files line by line: plain text, gzip or zstd (recognised by
//! their magic bytes, not their names), stream-decompressed into one large
//! buffer and split with `memchr`.
//!
//! The reader tracks its position in the file — the compressed bytes
//! consumed, or for plain text the bytes of the lines returned — so the
//! replay can show progress and spread its samples evenly over a file
//! without knowing in advance how many lines it holds.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use memchr::memchr;

use crate::error::{Error, Result};
use crate::trace::LineError;

/// Bytes decompressed per read: large, so the per-read overhead vanishes.
const BUFFER_BYTES: usize = 1 << 20;
/// Bytes read from a compressed file at a time: small enough that the
/// position moves smoothly (samples are spread by it), large enough to cost
/// nothing.
const COMPRESSED_READ_BYTES: usize = 64 << 10;
/// ftrace lines are a few hundred bytes; a longer one is not a trace.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// How a file is stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text.
    Plain,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames).
    Zstd,
}

impl Format {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        }
    }

    fn sniff(head: &[u8]) -> Format {
        const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
        const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
        if head.starts_with(&ZSTD_MAGIC) {
            Format::Zstd
        } else if head.starts_with(&GZIP_MAGIC) {
            Format::Gzip
        } else {
            Format::Plain
        }
    }
}

/// Counts the bytes read from the file underneath the decoder.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    counting: bool,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.counting {
            self.count.set(self.count.get() + n as u64);
        }
        Ok(n)
    }
}

/// File bytes a [`LineReader`] has consumed so far.
pub struct Position(Rc<Cell<u64>>);

impl Position {
    /// Bytes consumed.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A trace file opened for reading, one line at a time.
pub struct LineReader {
    path: PathBuf,
    format: Format,
    source: Box<dyn Read>,
    consumed: Rc<Cell<u64>>,
    file_bytes: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line_no: u64,
}

impl LineReader {
    /// Opens `path`, recognising its compression.
    pub fn open(path: &Path) -> Result<LineReader> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let file_bytes = file.metadata().map_err(open_err)?.len();
        let consumed = Rc::new(Cell::new(0));
        let mut raw = BufReader::with_capacity(
            COMPRESSED_READ_BYTES,
            Counting {
                inner: file,
                count: Rc::clone(&consumed),
                counting: true,
            },
        );
        let format = Format::sniff(raw.fill_buf().map_err(open_err)?);
        let source: Box<dyn Read> = match format {
            // Plain text: the position is the lines' bytes (see `emit`).
            Format::Plain => {
                raw.get_mut().counting = false;
                Box::new(raw)
            }
            Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Format::Zstd => {
                Box::new(
                    zstd::Decoder::with_buffer(raw).map_err(|e| Error::Decompress {
                        path: path.to_owned(),
                        format: "zstd",
                        line: 0,
                        detail: e.to_string(),
                    })?,
                )
            }
        };
        Ok(LineReader {
            path: path.to_owned(),
            format,
            source,
            consumed,
            file_bytes,
            buf: vec![0; BUFFER_BYTES],
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the file is stored.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file's size on disk.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Position in the file: compressed bytes consumed, or for plain text
    /// the bytes of the lines returned.
    pub fn consumed_bytes(&self) -> u64 {
        self.consumed.get()
    }

    /// A handle that reads [`LineReader::consumed_bytes`] while a line
    /// borrowed from the reader is still in use.
    pub fn position(&self) -> Position {
        Position(Rc::clone(&self.consumed))
    }

    /// The number of the line last returned (1-based).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// The next line without its newline (and without a `\r` before it),
    /// with its 1-based number, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>> {
        loop {
            if let Some(pos) = memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                self.start += pos + 1;
                return self.emit(line_start, line_start + pos).map(Some);
            }
            if self.end - self.start > MAX_LINE_BYTES {
                // The line being read, not yet counted, is already too long.
                return Err(self.too_long(self.line_no + 1));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line_start = self.start;
                self.start = self.end;
                return self.emit(line_start, self.end).map(Some);
            }
            self.refill()?;
        }
    }

    fn emit(&mut self, start: usize, mut end: usize) -> Result<(u64, &[u8])> {
        self.line_no += 1;
        if self.format == Format::Plain {
            let pos = self.consumed.get() + (end - start) as u64 + 1;
            self.consumed.set(pos.min(self.file_bytes));
        }
        if end - start > MAX_LINE_BYTES {
            // `line_no` already counts this line.
            return Err(self.too_long(self.line_no));
        }
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        Ok((self.line_no, &self.buf[start..end]))
    }

    /// The error for line `line` (1-based), longer than any ftrace line.
    fn too_long(&self, line: u64) -> Error {
        Error::TraceLine {
            path: self.path.clone(),
            line,
            kind: LineError::TooLong {
                max: MAX_LINE_BYTES,
            },
        }
    }

    /// Moves the partial line to the front and reads more after it.
    fn refill(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
    }

    fn read_error(&self, e: io::Error) -> Error {
        match self.format {
            Format::Plain => Error::Open {
                path: self.path.clone(),
                source: e,
            },
            Format::Gzip | Format::Zstd => Error::Decompress {
                path: self.path.clone(),
                format: self.format.name(),
                line: self.line_no,
                detail: e.to_string(),
            },
        }
    }
}
