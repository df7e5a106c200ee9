//! What the collector has acknowledged of the spool, as pure bookkeeping: the cursor, the spans
//! delivered live ahead of it, and the spans on their way live. No I/O; the spool persists
//! [`Acks::encode`] as its cursor file and applies what [`Acks`] decides to its files.
//!
//! A position is `(segment, byte offset)`, ordered as a pair. Every record before the cursor was
//! acknowledged. A span is what one append wrote: whole lines, in one segment.

/// Where one append's lines lie in the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub seq: u64,
    pub start: u64,
    pub end: u64,
    pub records: u64,
}

impl Span {
    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// The cursor and the spans that are not plain backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Acks {
    cursor: (u64, u64),
    /// Delivered live while something before them was not: skipped by replay, passed by the
    /// cursor once it reaches them. Sorted by position.
    ahead: Vec<Span>,
    /// Sent live (write-ahead, or spooled before a retry) and not yet settled: never replayed, and
    /// their segment never deleted to make room, while they are.
    flying: Vec<Span>,
    /// Records of the cursor's segment before the cursor that this process saw acknowledged
    /// (replayed, or delivered live and passed): a segment lost from under the spool had its
    /// own count of records less these, and those on their way or ahead, left for replay.
    behind: u64,
}

impl Acks {
    pub(crate) fn new(cursor: (u64, u64)) -> Self {
        Acks {
            cursor,
            ..Acks::default()
        }
    }

    pub(crate) fn cursor(&self) -> (u64, u64) {
        self.cursor
    }

    /// `span` is on its way to the collector.
    pub(crate) fn fly(&mut self, span: Span) {
        self.flying.push(span);
    }

    /// `span`, sent live, was delivered (`true`) or not. Returns whether it was flying (a span of
    /// a segment forgotten meanwhile is not).
    pub(crate) fn land(&mut self, span: Span, delivered: bool) -> bool {
        let Some(i) = self.flying.iter().position(|s| *s == span) else {
            return false;
        };
        self.flying.swap_remove(i);
        if delivered && (span.seq, span.end) > self.cursor {
            let at = self
                .ahead
                .partition_point(|s| (s.seq, s.start) < (span.seq, span.start));
            self.ahead.insert(at, span);
            self.absorb();
        }
        true
    }

    /// Everything before `pos` was acknowledged (a replayed batch of `records` lines, read from
    /// the cursor or from the start of a later segment; the spans delivered live that it passed
    /// over are counted as the cursor passes them).
    pub(crate) fn advance(&mut self, pos: (u64, u64), records: u64) {
        if pos > self.cursor {
            self.move_to(pos);
            self.behind += records;
        }
        self.absorb();
    }

    /// Moves the cursor forward to `pos`; what lies behind it is counted anew in a new segment.
    fn move_to(&mut self, pos: (u64, u64)) {
        if pos.0 != self.cursor.0 {
            self.behind = 0;
        }
        self.cursor = pos;
    }

    /// Moves the cursor over the spans delivered ahead of it that it reached, and forgets the
    /// ones it passed (counted behind it when in its segment).
    fn absorb(&mut self) {
        loop {
            let cursor = self.cursor;
            let mut passed = 0;
            self.ahead.retain(|s| {
                let keep = (s.seq, s.end) > cursor;
                if !keep && s.seq == cursor.0 {
                    passed += s.records;
                }
                keep
            });
            self.behind += passed;
            match self.ahead.first() {
                // Passed, and counted, on the next turn.
                Some(s) if (s.seq, s.start) <= cursor => self.move_to((s.seq, s.end)),
                _ => return,
            }
        }
    }

    /// The segment the cursor is in is done (read to its end, or gone): the cursor moves to the
    /// start of `next`, the next segment.
    pub(crate) fn next_segment(&mut self, next: u64) {
        if next > self.cursor.0 {
            self.move_to((next, 0));
        }
        self.absorb();
    }

    /// Records of segment `seq` this process saw acknowledged before the cursor (none unless the
    /// cursor is in it).
    pub(crate) fn behind(&self, seq: u64) -> u64 {
        if self.cursor.0 == seq { self.behind } else { 0 }
    }

    /// Segment `seq` was deleted: its spans are forgotten (a flying one then lands as lost).
    pub(crate) fn forget(&mut self, seq: u64) {
        self.ahead.retain(|s| s.seq != seq);
        self.flying.retain(|s| s.seq != seq);
    }

    /// If the line at `(seq, offset)` was delivered live, the end of the span holding it.
    pub(crate) fn delivered_until(&self, seq: u64, offset: u64) -> Option<u64> {
        // Sorted and disjoint: the one span that could hold it is the last starting at or before.
        let i = self
            .ahead
            .partition_point(|s| (s.seq, s.start) <= (seq, offset));
        let s = self.ahead.get(i.checked_sub(1)?)?;
        (s.seq == seq && offset < s.end).then_some(s.end)
    }

    /// Whether the line at `(seq, offset)` is on its way live.
    pub(crate) fn is_flying(&self, seq: u64, offset: u64) -> bool {
        self.flying
            .iter()
            .any(|s| s.seq == seq && s.start <= offset && offset < s.end)
    }

    /// Whether segment `seq` holds a span on its way live.
    pub(crate) fn flying_in(&self, seq: u64) -> bool {
        self.flying.iter().any(|s| s.seq == seq)
    }

    /// Records of segment `seq` on their way.
    pub(crate) fn flying_records(&self, seq: u64) -> u64 {
        self.flying
            .iter()
            .filter(|s| s.seq == seq)
            .map(|s| s.records)
            .sum()
    }

    /// Keeps only the spans acknowledged ahead for which `valid(seq, end)` holds (a cursor file
    /// written before a crash can name a segment deleted, or a file made again, after it).
    pub(crate) fn retain_spans(&mut self, valid: impl Fn(u64, u64) -> bool) {
        self.ahead.retain(|s| valid(s.seq, s.end));
    }

    /// Records of segment `seq` acknowledged ahead of the cursor, or on their way.
    pub(crate) fn not_backlog_records(&self, seq: u64) -> u64 {
        self.ahead
            .iter()
            .chain(&self.flying)
            .filter(|s| s.seq == seq)
            .map(|s| s.records)
            .sum()
    }

    /// Bytes past the cursor that are not backlog: delivered ahead of it, or on their way.
    pub(crate) fn not_backlog_bytes(&self) -> u64 {
        self.ahead.iter().chain(&self.flying).map(Span::len).sum()
    }

    /// Bytes past the cursor delivered ahead of it.
    pub(crate) fn ahead_bytes(&self) -> u64 {
        self.ahead.iter().map(Span::len).sum()
    }

    /// The cursor file: `SEQ OFFSET NEXT` (`NEXT`: the active segment's number, so a cursor in it
    /// is told from one in a segment since deleted), then one `SEQ START END RECORDS` line per
    /// span delivered ahead of it.
    pub(crate) fn encode(&self, next: u64) -> String {
        let mut out = format!("{} {} {next}\n", self.cursor.0, self.cursor.1);
        for s in &self.ahead {
            out.push_str(&format!("{} {} {} {}\n", s.seq, s.start, s.end, s.records));
        }
        out
    }

    /// Reads a cursor file, with the active segment's number it names (`None` in a file of an
    /// earlier version, whose cursor never pointed into the active segment); what cannot be read
    /// gives the start of the spool (everything is replayed: duplicates, never a loss). Spans that
    /// are not well formed are left out.
    pub(crate) fn decode(text: &str) -> (Acks, Option<u64>) {
        let mut lines = text.lines();
        let numbers = |line: &str| -> Option<Vec<u64>> {
            line.split_whitespace().map(|n| n.parse().ok()).collect()
        };
        let (cursor, next) = match lines.next().and_then(numbers).as_deref() {
            Some(&[seq, offset]) => ((seq, offset), None),
            Some(&[seq, offset, next]) if next >= seq => ((seq, offset), Some(next)),
            _ => return (Acks::default(), None),
        };
        let mut ahead: Vec<Span> = lines
            .filter_map(numbers)
            .filter_map(|n| match n[..] {
                [seq, start, end, records] if start < end => Some(Span {
                    seq,
                    start,
                    end,
                    records,
                }),
                _ => None,
            })
            .collect();
        ahead.sort_by_key(|s| (s.seq, s.start));
        // Overlapping spans are not something the spool writes: keep the first of each.
        ahead.dedup_by(|b, a| b.seq == a.seq && b.start < a.end);
        let mut acks = Acks {
            cursor,
            ahead,
            flying: Vec::new(),
            behind: 0,
        };
        acks.absorb();
        (acks, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(seq: u64, start: u64, end: u64) -> Span {
        Span {
            seq,
            start,
            end,
            records: end - start,
        }
    }

    /// One step applied to the bookkeeping, and the cursor and backlog bytes it leaves.
    enum Step {
        Fly(Span),
        Land(Span, bool),
        /// A replayed batch: the cursor's new position and its records.
        Advance(u64, u64, u64),
        Next(u64),
        Forget(u64),
    }

    #[test]
    fn the_cursor_moves_only_over_what_was_acknowledged() {
        use Step::*;
        let (a, b, c) = (span(1, 0, 10), span(1, 10, 20), span(1, 20, 30));
        // (name, steps, cursor after, bytes past it that are not backlog, records of its segment
        // seen acknowledged before it); a span's records are its bytes here.
        type Row = (&'static str, Vec<Step>, (u64, u64), u64, u64);
        let table: Vec<Row> = vec![
            (
                "in order",
                vec![Fly(a), Fly(b), Land(a, true), Land(b, true)],
                (1, 20),
                0,
                20,
            ),
            (
                "out of order waits",
                vec![Fly(a), Fly(b), Land(b, true)],
                (1, 0),
                20,
                0,
            ),
            (
                "then catches up",
                vec![Fly(a), Fly(b), Land(b, true), Land(a, true)],
                (1, 20),
                0,
                20,
            ),
            (
                "failed stays backlog",
                vec![Fly(a), Fly(b), Land(a, false), Land(b, true)],
                (1, 0),
                10,
                0,
            ),
            (
                "replay passes a failed span and absorbs the delivered one",
                vec![
                    Fly(a),
                    Fly(b),
                    Fly(c),
                    Land(a, false),
                    Land(b, true),
                    Land(c, false),
                    Advance(1, 10, 10),
                ],
                (1, 20),
                0,
                20,
            ),
            (
                "a span behind the cursor is nothing",
                vec![Advance(1, 30, 30), Fly(a), Land(a, true)],
                (1, 30),
                0,
                30,
            ),
            (
                "next segment",
                vec![
                    Fly(span(2, 0, 5)),
                    Land(span(2, 0, 5), true),
                    Advance(1, 30, 30),
                    Next(2),
                ],
                (2, 5),
                0,
                5,
            ),
            (
                "forgotten segment",
                vec![Fly(span(2, 0, 5)), Forget(2)],
                (1, 0),
                0,
                0,
            ),
            (
                "landing a forgotten span",
                vec![Fly(a), Forget(1), Land(a, true)],
                (1, 0),
                0,
                0,
            ),
            (
                "next never moves back",
                vec![Advance(3, 4, 4), Next(2)],
                (3, 4),
                0,
                4,
            ),
            (
                "replay passing a span delivered live counts it behind",
                vec![Fly(b), Land(b, true), Advance(1, 30, 20)],
                (1, 30),
                0,
                30,
            ),
        ];
        for (name, steps, cursor, bytes, behind) in table {
            let mut acks = Acks::new((1, 0));
            for step in steps {
                match step {
                    Fly(s) => acks.fly(s),
                    Land(s, ok) => {
                        acks.land(s, ok);
                    }
                    Advance(seq, off, n) => acks.advance((seq, off), n),
                    Next(seq) => acks.next_segment(seq),
                    Forget(seq) => acks.forget(seq),
                }
            }
            assert_eq!(acks.cursor(), cursor, "{name}");
            assert_eq!(acks.not_backlog_bytes(), bytes, "{name}");
            assert_eq!(acks.behind(cursor.0), behind, "{name}");
        }
    }

    #[test]
    fn replay_skips_delivered_spans_and_stops_at_flying_ones() {
        let mut acks = Acks::new((1, 0));
        acks.fly(span(1, 10, 20));
        acks.fly(span(1, 20, 30));
        acks.land(span(1, 10, 20), true);
        assert_eq!(acks.delivered_until(1, 0), None);
        assert_eq!(acks.delivered_until(1, 12), Some(20));
        acks.fly(span(1, 40, 50));
        acks.fly(span(2, 0, 10));
        acks.land(span(1, 40, 50), true);
        acks.land(span(2, 0, 10), true);
        for (seq, offset, want) in [
            (1, 9, None),
            (1, 10, Some(20)),
            (1, 19, Some(20)),
            (1, 20, None),
            (1, 45, Some(50)),
            (1, 50, None),
            (2, 0, Some(10)),
            (2, 10, None),
            (0, 15, None),
        ] {
            assert_eq!(acks.delivered_until(seq, offset), want, "({seq}, {offset})");
        }
        assert!(acks.is_flying(1, 25));
        assert!(!acks.is_flying(1, 30));
        assert!(acks.flying_in(1) && !acks.flying_in(2));
        assert_eq!(acks.not_backlog_records(1), 30);
        assert_eq!(acks.flying_records(1), 10);
    }

    #[test]
    fn the_cursor_file_round_trips_and_bad_text_replays_everything() {
        let mut acks = Acks::new((3, 100));
        acks.fly(span(3, 200, 300));
        acks.land(span(3, 200, 300), true);
        acks.fly(span(4, 0, 50));
        let text = acks.encode(4);
        assert_eq!(text, "3 100 4\n3 200 300 100\n");
        let (back, next) = Acks::decode(&text);
        assert_eq!(next, Some(4));
        assert_eq!(back.cursor(), (3, 100));
        assert_eq!(back.delivered_until(3, 250), Some(300));
        assert_eq!(
            back.not_backlog_bytes(),
            100,
            "flying spans are not persisted"
        );
        assert_eq!(
            Acks::decode("7 9\n"),
            (Acks::new((7, 9)), None),
            "an earlier version's"
        );
        for bad in ["", "x y", "1", "3 2 1", "1 2 3 4", "-1 0"] {
            assert_eq!(Acks::decode(bad), (Acks::default(), None), "{bad:?}");
        }
        let (odd, _) = Acks::decode("1 0\n1 5 5 1\n1 9 3 1\nzz\n1 0 4 2\n1 2 8 3\n");
        assert_eq!(odd.cursor(), (1, 4), "the span at the cursor is absorbed");
        assert_eq!(
            odd.not_backlog_bytes(),
            0,
            "empty, reversed and overlapping spans dropped"
        );
    }
}
