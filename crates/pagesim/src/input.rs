//! Reading trace files line by line: plain text, gzip or zstd (recognised by
//! their magic bytes, not their names), stream-decompressed into one large
//! buffer and split with `memchr`.
//!
//! The reader tracks its position in the file — the compressed bytes
//! consumed, or for plain text the bytes of the lines returned — so the
//! replay can show progress and spread its samples evenly over a file
//! without knowing in advance how many lines it holds.
//!
//! A compressed file is decompressed on a thread of its own, a few buffers
//! ahead of the lines being read, so that decompressing and parsing run
//! side by side. The thread fills each buffer exactly as reading in place
//! would (the partial line at the end of one buffer first in the next, then
//! one read of the decoder into the rest), and each buffer carries the
//! position after its read: the lines, their numbers, the position seen
//! with each line and the errors are those of reading in place.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

use memchr::{memchr, memrchr};

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
/// Buffers the decompression thread may fill ahead of the reader.
const BUFFERS_AHEAD: usize = 4;

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
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Only the decoding thread writes and reads it: no ordering needed.
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What the decompression thread sends: one buffer as one read in place
/// would have left it, the end of the stream, or the read's error.
enum Filled {
    /// `buf[..end]` holds the partial line the previous buffer ended with,
    /// then what one read of the decoder gave; `consumed` is the file's
    /// bytes read so far.
    Buffer {
        /// The buffer, [`BUFFER_BYTES`] long.
        buf: Vec<u8>,
        /// Bytes filled.
        end: usize,
        /// File bytes consumed after the read.
        consumed: u64,
    },
    /// The decoder's read returned 0; `consumed` is the file's bytes read
    /// by then (the last line, without a newline, is read with it).
    End {
        /// File bytes consumed after the read.
        consumed: u64,
    },
    /// The decoder's read failed.
    Failed(io::Error),
}

/// Where the lines' bytes come from.
enum Source {
    /// Read in place (plain text).
    Inline(Box<dyn Read>),
    /// Filled by the decompression thread; used buffers go back to it.
    Thread {
        filled: Receiver<Filled>,
        spent: Sender<Vec<u8>>,
    },
}

/// The decompression thread: reads `decoder` into buffers as
/// [`LineReader::refill`] would in place, until the end, an error, a
/// partial line the reader will refuse (longer than [`MAX_LINE_BYTES`]),
/// or the reader is gone.
fn decompress(
    mut decoder: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
    filled: SyncSender<Filled>,
    spent: Receiver<Vec<u8>>,
) {
    let mut buf = vec![0; BUFFER_BYTES];
    let mut end = 0;
    loop {
        let n = loop {
            match decoder.read(&mut buf[end..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = match n {
            Ok(0) => {
                let consumed = count.load(Ordering::Relaxed);
                let _ = filled.send(Filled::End { consumed });
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = filled.send(Filled::Failed(e));
                return;
            }
        };
        // What the reader will leave of this buffer: the bytes after its
        // last newline (none before `end`: they were such bytes already).
        let filled_end = end + n;
        let rest = match memrchr(b'\n', &buf[end..filled_end]) {
            Some(i) => end + i + 1,
            None => 0,
        };
        let left = filled_end - rest;
        let mut next = spent
            .try_recv()
            .ok()
            .filter(|b| b.len() == BUFFER_BYTES)
            .unwrap_or_else(|| vec![0; BUFFER_BYTES]);
        next[..left].copy_from_slice(&buf[rest..filled_end]);
        let full = std::mem::replace(&mut buf, next);
        let message = Filled::Buffer {
            buf: full,
            end: filled_end,
            consumed: count.load(Ordering::Relaxed),
        };
        if filled.send(message).is_err() || left > MAX_LINE_BYTES {
            // The reader is gone, or will stop at this partial line.
            return;
        }
        end = left;
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
    source: Source,
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
        let count = Arc::new(AtomicU64::new(0));
        let mut raw = BufReader::with_capacity(
            COMPRESSED_READ_BYTES,
            Counting {
                inner: file,
                count: Arc::clone(&count),
            },
        );
        let format = Format::sniff(raw.fill_buf().map_err(open_err)?);
        let decoder: Box<dyn Read + Send> = match format {
            // Plain text: the position is the lines' bytes (see `emit`).
            Format::Plain => Box::new(raw),
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
        // The bytes read to recognise the format count from the start (for
        // plain text too, whose position then grows by the lines' bytes).
        let consumed = Rc::new(Cell::new(count.load(Ordering::Relaxed)));
        let source = match format {
            Format::Plain => Source::Inline(decoder),
            Format::Gzip | Format::Zstd => {
                let (filled_tx, filled) = sync_channel(BUFFERS_AHEAD);
                let (spent, spent_rx) = channel();
                std::thread::Builder::new()
                    .name("decompress".to_owned())
                    .spawn(move || decompress(decoder, count, filled_tx, spent_rx))
                    .map_err(open_err)?;
                Source::Thread { filled, spent }
            }
        };
        Ok(LineReader {
            path: path.to_owned(),
            format,
            source,
            consumed,
            file_bytes,
            buf: match format {
                Format::Plain => vec![0; BUFFER_BYTES],
                // The first buffer comes from the thread.
                Format::Gzip | Format::Zstd => Vec::new(),
            },
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

    /// Moves the partial line to the front and reads more after it (or
    /// takes the next buffer, which the decompression thread filled so).
    fn refill(&mut self) -> Result<()> {
        let source = match &mut self.source {
            Source::Inline(source) => source,
            Source::Thread { filled, spent } => {
                let message = filled.recv().unwrap_or_else(|_| {
                    // The thread stops early only where this reader stops.
                    Filled::Failed(io::Error::other("the decompression thread stopped"))
                });
                match message {
                    Filled::Buffer { buf, end, consumed } => {
                        let used = std::mem::replace(&mut self.buf, buf);
                        // The thread may be gone (it stopped at a long line).
                        let _ = spent.send(used);
                        self.start = 0;
                        self.end = end;
                        self.consumed.set(consumed);
                    }
                    Filled::End { consumed } => {
                        self.eof = true;
                        self.consumed.set(consumed);
                    }
                    Filled::Failed(e) => return Err(self.read_error(e)),
                }
                return Ok(());
            }
        };
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match source.read(&mut self.buf[self.end..]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Lines of pseudo-random hex, so that the compressed file spans many
    /// reads of the file; the last one without a newline.
    fn text(lines: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::new();
        for i in 0..lines {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i > 0 {
                out.push(b'\n');
            }
            write!(out, "{i} {x:016x} {:016x}", x.rotate_left(29)).unwrap();
        }
        out
    }

    /// Every line, and the position seen with it, across buffers and at the
    /// end of a file with no final newline: the position reaches the file's
    /// size with the last line (the read that found the end consumed the
    /// rest of the file), as reading in place does.
    #[test]
    fn compressed_lines_and_positions_across_buffers() {
        let plain = text(200_000);
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("t.zst", zstd::encode_all(&plain[..], 1).unwrap()),
            ("t.gz", {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&plain).unwrap();
                e.finish().unwrap()
            }),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let mut r = LineReader::open(&path).unwrap();
            let position = r.position();
            let (mut got, mut last) = (Vec::new(), 0);
            while let Some((n, line)) = r.next_line().unwrap() {
                assert_eq!(n, got.len() as u64 + 1);
                assert!(position.get() >= last && position.get() <= bytes.len() as u64);
                last = position.get();
                got.push(line.to_vec());
            }
            assert!(bytes.len() > 4 * COMPRESSED_READ_BYTES, "{name}");
            assert_eq!(got.join(&b'\n'), plain, "{name}");
            assert_eq!(last, bytes.len() as u64, "{name}");
        }
    }
}
