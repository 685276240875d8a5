//! Puppet's results sent inline: the apply and plan steps print them on their own stdout once
//! Puppet has ended, between a `::capo:results-begin=DIR` and a `::capo:results-end=DIR` line
//! (`results_inline` in lib-step.sh), so that reading them costs no second command (a channel
//! and a round trip per host). [`Splitter`] takes that block out of the step's stdout as it
//! streams: the step's log, tail and live output stay what Puppet printed.

/// The line that opens the block, followed by the results directory.
const BEGIN: &[u8] = b"::capo:results-begin=";
/// The line that closes it, followed by the same directory.
const END: &[u8] = b"::capo:results-end=";

/// The longest line held back as a maybe-marker (the marker and a directory path).
const MAX_HELD: usize = 4096;

/// The most of a block kept (a big catalog's report is a few MiB).
pub const MAX_BYTES: usize = 64 << 20;

/// What a step sent inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// The whole block: what `collect.sh` prints for the directory.
    Complete(Vec<u8>),
    /// A block larger than [`MAX_BYTES`]: read no further.
    TooBig,
}

/// Splits a step's stdout into what it printed and the results block, chunk by chunk
/// (a marker line may arrive in pieces).
#[derive(Debug, Default)]
pub struct Splitter {
    /// The start of a line that may still turn out to open the block, held back until it
    /// is complete (or cannot be the marker any more).
    held: Vec<u8>,
    /// Whether the next byte fed starts a line.
    mid_line: bool,
    /// The block being read.
    block: Option<Block>,
    /// The block once closed.
    done: Option<Inline>,
}

#[derive(Debug)]
struct Block {
    /// `\n` + [`END`] + DIR + `\n`: the block's bytes end with the newline of its last file's
    /// eof line, so the end line always follows a newline.
    end: Vec<u8>,
    /// A newline, then the bytes so far (the newline lets an empty block's end line match
    /// like any other); only the last `end.len()` once the block is too big.
    bytes: Vec<u8>,
    too_big: bool,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Splitter::default()
    }

    /// Feeds one chunk of stdout; appends to `out` the bytes that are the step's own output.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.held.is_empty() {
            self.split(chunk, out);
        } else {
            let mut data = std::mem::take(&mut self.held);
            data.extend_from_slice(chunk);
            self.split(&data, out);
        }
    }

    /// Ends the stream: appends to `out` whatever is still held back, and returns the block,
    /// if one was closed. A block never closed (the step was stopped while it sent it) is
    /// output after all, as the host printed it: capo then reads the results by
    /// `collect.sh`, and markers after it (the deadline's) are not lost.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Option<Inline> {
        out.append(&mut self.held);
        if let Some(block) = self.block.take() {
            let dir = &block.end[1 + END.len()..];
            out.extend_from_slice(BEGIN);
            out.extend_from_slice(dir);
            // Without the newline the block starts with for the search (all of it, unless
            // the block was too big and only its end is left).
            let skip = usize::from(!block.too_big);
            out.extend_from_slice(&block.bytes[skip..]);
        }
        self.done
    }

    fn split(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if let Some(block) = &mut self.block {
                match block.take(data) {
                    Some(rest) => {
                        let block = self.block.take();
                        self.done = block.map(Block::into_inline);
                        self.mid_line = false;
                        data = rest;
                    }
                    None => return,
                }
                continue;
            }
            if self.done.is_some() {
                // One block per step: anything after it is the step's own.
                out.extend_from_slice(data);
                return;
            }
            // The next line start in `data`, and whether a line starts right at 0.
            let start = if self.mid_line {
                match memchr::memchr(b'\n', data) {
                    Some(nl) => {
                        out.extend_from_slice(&data[..=nl]);
                        data = &data[nl + 1..];
                        self.mid_line = false;
                        continue;
                    }
                    None => {
                        out.extend_from_slice(data);
                        return;
                    }
                }
            } else {
                data
            };
            // `start` begins a line.
            let line_end = memchr::memchr(b'\n', start);
            let line = &start[..line_end.map_or(start.len(), |nl| nl + 1)];
            let may_open = if line.len() >= BEGIN.len() {
                line.starts_with(BEGIN)
            } else {
                BEGIN.starts_with(line)
            };
            match (may_open, line_end) {
                (true, Some(nl)) => {
                    let dir = &start[BEGIN.len()..nl];
                    let mut end = Vec::with_capacity(END.len() + dir.len() + 2);
                    end.push(b'\n');
                    end.extend_from_slice(END);
                    end.extend_from_slice(dir);
                    end.push(b'\n');
                    self.block = Some(Block {
                        end,
                        // The block's first byte may end its (empty) first file's line.
                        bytes: vec![b'\n'],
                        too_big: false,
                    });
                    data = &start[nl + 1..];
                }
                (true, None) if start.len() <= MAX_HELD => {
                    // Maybe the marker, not yet whole: wait for the rest of the line.
                    self.held.extend_from_slice(start);
                    return;
                }
                (false, Some(nl)) => {
                    out.extend_from_slice(&start[..=nl]);
                    data = &start[nl + 1..];
                }
                (_, None) => {
                    // No marker line is this long: the step's own.
                    out.extend_from_slice(start);
                    self.mid_line = true;
                    return;
                }
            }
        }
    }
}

impl Block {
    /// Takes `data` into the block; once the end line is in, returns what follows it.
    fn take<'a>(&mut self, data: &'a [u8]) -> Option<&'a [u8]> {
        // Where a match could start: the end line may straddle the chunks.
        let from = self.bytes.len().saturating_sub(self.end.len() - 1);
        let before = self.bytes.len();
        self.bytes.extend_from_slice(data);
        let found = memchr::memmem::find(&self.bytes[from..], &self.end).map(|at| from + at);
        if let Some(at) = found {
            let after = at + self.end.len();
            // What followed the end line in this chunk is the step's again.
            let rest = &data[after - before..];
            self.bytes.truncate(at + 1);
            return Some(rest);
        }
        if self.bytes.len() > MAX_BYTES + 1 {
            self.too_big = true;
            let keep = self.end.len();
            let cut = self.bytes.len() - keep;
            self.bytes.drain(..cut);
        }
        None
    }

    fn into_inline(self) -> Inline {
        if self.too_big {
            return Inline::TooBig;
        }
        // Without the leading newline added for the search, and the end line's own one.
        let mut bytes = self.bytes;
        bytes.remove(0);
        Inline::Complete(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/tmp/capo-run.AbC123";

    fn block(files: &str) -> String {
        format!("::capo:results-begin={DIR}\n{files}::capo:results-end={DIR}\n")
    }

    const FILES: &str =
        "a: 1\n::capo:eof=summary.yaml\n---\nr\n::capo:eof=report.yaml\n\n::capo:eof=log.jsonl\n";

    /// Feeds `input` in chunks of `size` bytes.
    fn split(input: &str, size: usize) -> (String, Option<Inline>) {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(size) {
            s.feed(chunk, &mut out);
        }
        let inline = s.finish(&mut out);
        (String::from_utf8(out).expect("utf-8"), inline)
    }

    #[test]
    fn the_block_is_taken_out_in_chunks_of_every_size() {
        let before = "::capo:pid=1\nNotice: Applied catalog\n::capo:results=x\n";
        let after = "::capo:record=ok\n";
        let input = format!("{before}{}{after}", block(FILES));
        for size in 1..=input.len() {
            let (out, inline) = split(&input, size);
            assert_eq!(out, format!("{before}{after}"), "chunks of {size}");
            assert_eq!(
                inline,
                Some(Inline::Complete(FILES.as_bytes().to_vec())),
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn empty_files_and_output_without_a_last_newline() {
        let files = "\n::capo:eof=summary.yaml\n\n::capo:eof=report.yaml\n\n::capo:eof=log.jsonl\n";
        let input = format!("no newline at the end{}", "\n") + &block(files) + "tail";
        for size in 1..=input.len() {
            let (out, inline) = split(&input, size);
            assert_eq!(out, "no newline at the end\ntail", "chunks of {size}");
            assert_eq!(inline, Some(Inline::Complete(files.as_bytes().to_vec())));
        }
    }

    #[test]
    fn lines_that_only_look_like_the_marker_stay_output() {
        let input = "x ::capo:results-begin=/a\n::capo:results-beg\n::capo:results-begi";
        for size in 1..=input.len() {
            let (out, inline) = split(input, size);
            assert_eq!(out, input, "chunks of {size}");
            assert_eq!(inline, None);
        }
    }

    #[test]
    fn an_end_line_for_another_directory_is_part_of_the_block() {
        let files = format!("::capo:results-end=/tmp/other\n{FILES}");
        let (out, inline) = split(&block(&files), 7);
        assert_eq!(out, "");
        assert_eq!(inline, Some(Inline::Complete(files.into_bytes())));
    }

    #[test]
    fn a_block_cut_short_is_output_as_it_came() {
        // The deadline stopped the step while it sent its results.
        let input = format!(
            "ok\n::capo:results-begin={DIR}\na: 1\n::capo:eof=summary.yaml\n---\n\n::capo:deadline=5.000\n"
        );
        for size in 1..=input.len() {
            let (out, inline) = split(&input, size);
            assert_eq!(out, input, "chunks of {size}");
            assert_eq!(inline, None);
        }
    }

    #[test]
    fn a_second_block_is_output() {
        let input = format!("{}{}", block(FILES), block("x\n"));
        let (out, inline) = split(&input, 5);
        assert_eq!(out, block("x\n"));
        assert_eq!(inline, Some(Inline::Complete(FILES.as_bytes().to_vec())));
    }

    #[test]
    fn a_block_too_big_is_dropped_and_the_output_after_it_kept() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        s.feed(format!("::capo:results-begin={DIR}\n").as_bytes(), &mut out);
        let mib = vec![b'y'; 1 << 20];
        for _ in 0..65 {
            s.feed(&mib, &mut out);
        }
        s.feed(
            format!("\n::capo:results-end={DIR}\n::capo:record=ok\n").as_bytes(),
            &mut out,
        );
        assert_eq!(s.finish(&mut out), Some(Inline::TooBig));
        assert_eq!(out, b"::capo:record=ok\n");
    }
}
