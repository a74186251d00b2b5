//! The cells' engine: one [`Session`] (exactly the engine `epic run` uses, with
//! its functions, `import` search path and config conventions) on a thread of
//! its own, fed jobs over a channel.
//!
//! Rhai's `Engine` and `Scope` are not `Send`, so they are made on this thread
//! and never leave it; the protocol side (tokio tasks) talks to it through
//! [`EngineHandle`]. An execution streams [`ExecEvent`]s back on one channel:
//! `print` output as it happens, then exactly one `Done`, so output always
//! precedes the result. Completion, inspection and `is_complete` answer on a
//! oneshot. A long cell blocks only this thread; heartbeat, control (interrupt,
//! shutdown) and iopub go on.
//!
//! Interrupts: the kernel's SIGINT handler and `interrupt_request` set epic's
//! Ctrl-C flag ([`crate::interrupt`]). Extraction and training stop at their
//! next safe point with the message `epic run` prints; a pure-script loop stops
//! at its next operation (`Engine::on_progress`). The flag is cleared before each
//! cell, and the scope keeps what the interrupted cell had assigned.
use super::output::{self, Sink};
use crate::notebook::Content;
use crate::script::{HostOptions, ScriptError, Session};
use jupyter_protocol::MediaType;
use rhai::{Dynamic, ParseErrorType, Position};
use std::sync::mpsc;
use tokio::sync::{mpsc as tmpsc, oneshot};

/// Work for the engine thread.
pub enum Job {
    /// Run a cell.
    Execute { code: String, events: tmpsc::UnboundedSender<ExecEvent> },
    /// Names that complete the word before `cursor_pos` (in code points).
    Complete { code: String, cursor_pos: usize, reply: oneshot::Sender<Completion> },
    /// Help on the word at `cursor_pos`.
    Inspect { code: String, cursor_pos: usize, reply: oneshot::Sender<Option<String>> },
    /// Whether `code` is a whole cell.
    IsComplete { code: String, reply: oneshot::Sender<IsComplete> },
}

/// Streamed back during an execution.
#[derive(Debug)]
pub enum ExecEvent {
    /// Text for the cell's stdout.
    Stdout(String),
    /// Text for the cell's stderr (progress, warnings, notes).
    Stderr(String),
    /// Always the last event of an execution: what to show, or the error.
    Done(Result<Option<DisplayValue>, ExecError>),
}

/// A cell's value as a MIME bundle (always with `text/plain`).
#[derive(Debug, Clone)]
pub struct DisplayValue {
    pub media: Vec<MediaType>,
}

/// A failed cell: a script error, or an interrupt.
#[derive(Debug, Clone)]
pub struct ExecError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

/// Completion candidates; positions in Unicode code points (protocol ≥ 5.2).
#[derive(Debug, Clone)]
pub struct Completion {
    pub matches: Vec<String>,
    pub cursor_start: usize,
    pub cursor_end: usize,
}

/// The answer to `is_complete_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsComplete {
    Complete,
    Incomplete(String),
    Invalid,
}

/// The protocol side's handle on the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
}

impl EngineHandle {
    /// Starts the engine thread with a session set up by `options`.
    pub fn spawn(options: HostOptions, sink: Sink) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("epic-cells".into())
            .stack_size(16 << 20) // deep Rhai recursion needs stack
            .spawn(move || {
                let mut cells = Cells::new(options, sink);
                while let Ok(job) = rx.recv() {
                    cells.handle(job);
                }
            })?;
        Ok(Self { jobs: tx })
    }

    /// Submits a job; fails only when the engine thread has stopped.
    pub fn submit(&self, job: Job) -> Result<(), ()> {
        self.jobs.send(job).map_err(|_| ())
    }
}

/// Rhai keywords and built-ins that the function metadata does not list.
const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "if",
    "else",
    "switch",
    "do",
    "while",
    "loop",
    "until",
    "for",
    "in",
    "continue",
    "break",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "global",
    "true",
    "false",
    "this",
    "Fn",
    "call",
    "curry",
    "is_def_fn",
    "is_def_var",
    "print",
    "debug",
    "type_of",
];

/// The session and what completion and inspection read.
struct Cells {
    session: Session,
    sink: Sink,
    /// Every function name the engine knows (epic's and Rhai's), and keywords.
    names: Vec<String>,
    /// Rhai's own signatures, for inspection of functions `epic doc` does not list.
    signatures: Vec<String>,
}

impl Cells {
    fn new(options: HostOptions, sink: Sink) -> Self {
        let mut session = Session::with_options(options);
        let engine = session.engine_mut();
        let s = sink.clone();
        engine.on_print(move |text| {
            s.send(ExecEvent::Stdout(format!("{text}\n")));
        });
        let s = sink.clone();
        engine.on_debug(move |text, _, pos| {
            s.send(ExecEvent::Stderr(format!("[{pos}] {text}\n")));
        });
        // Every Rhai operation: one atomic load; Some(..) ends the cell.
        engine.on_progress(|_| crate::interrupt::requested().then(|| Dynamic::from("interrupted")));
        let signatures = session.engine_mut().gen_fn_signatures(true);
        let mut names: Vec<String> = signatures
            .iter()
            .filter_map(|sig| sig.split('(').next())
            .map(|n| n.trim_start_matches("get$").trim_start_matches("set$").to_string())
            .filter(|n| is_identifier(n))
            .chain(KEYWORDS.iter().map(|s| s.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Cells { session, sink, names, signatures }
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Execute { code, events } => {
                let result = self.execute(&code, &events);
                let _ = events.send(ExecEvent::Done(result));
            }
            Job::Complete { code, cursor_pos, reply } => {
                let _ = reply.send(self.complete(&code, cursor_pos));
            }
            Job::Inspect { code, cursor_pos, reply } => {
                let _ = reply.send(self.inspect(&code, cursor_pos));
            }
            Job::IsComplete { code, reply } => {
                let _ = reply.send(self.is_complete(&code));
            }
        }
    }

    fn execute(
        &mut self,
        code: &str,
        events: &tmpsc::UnboundedSender<ExecEvent>,
    ) -> Result<Option<DisplayValue>, ExecError> {
        crate::interrupt::clear();
        self.sink.attach(events.clone());
        let result = self.session.run(code);
        // What the cell wrote to stderr reaches it before its result.
        output::flush_stderr();
        self.sink.detach();
        let interrupted = crate::interrupt::requested();
        crate::interrupt::clear();
        match result {
            Ok(v) if v.is_unit() => Ok(None),
            Ok(v) => Ok(Some(display(&v.notebook_output()))),
            Err(e) => Err(exec_error(&e, code, interrupted)),
        }
    }

    fn complete(&self, code: &str, cursor_pos: usize) -> Completion {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor_pos.min(chars.len());
        let start = ident_start(&chars, cursor);
        let prefix: String = chars[start..cursor].iter().collect();
        let mut matches: Vec<String> = self
            .session
            .variables()
            .into_iter()
            .chain(self.session.functions().into_iter().map(|f| f.0))
            .chain(self.names.iter().cloned())
            .filter(|name| name.starts_with(&prefix))
            .collect();
        matches.sort();
        matches.dedup();
        Completion { matches, cursor_start: start, cursor_end: cursor }
    }

    /// A variable's type and value, a script function's parameters and doc
    /// comments, and for epic's functions the entries of `epic doc` (Rhai's own
    /// functions: their signatures).
    fn inspect(&self, code: &str, cursor_pos: usize) -> Option<String> {
        let chars: Vec<char> = code.chars().collect();
        let cursor = cursor_pos.min(chars.len());
        let start = ident_start(&chars, cursor);
        let mut end = cursor;
        while end < chars.len() && is_ident_char(chars[end]) {
            end += 1;
        }
        let word: String = chars[start..end].iter().collect();
        if word.is_empty() {
            return None;
        }
        let mut sections = Vec::new();
        if let Some(value) = self.session.variable(&word) {
            sections.push(format!("{word}: {}\n{}", value.type_name(), self.session.describe(value)));
        }
        for (name, params, comments) in self.session.functions().into_iter().filter(|f| f.0 == word) {
            let mut s = format!("fn {name}({})", params.join(", "));
            for c in comments {
                s.push('\n');
                s.push_str(&c);
            }
            sections.push(s);
        }
        let docs = crate::script::docs::lookup(&word);
        if docs.is_empty() {
            let sigs: Vec<&String> =
                self.signatures.iter().filter(|s| s.split('(').next() == Some(word.as_str())).take(12).collect();
            if !sigs.is_empty() {
                sections.push(sigs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"));
            }
        }
        sections.extend(docs.iter().map(|e| e.text()));
        (!sections.is_empty()).then(|| sections.join("\n\n"))
    }

    fn is_complete(&mut self, code: &str) -> IsComplete {
        match self.session.engine_mut().compile(code) {
            Ok(_) => IsComplete::Complete,
            Err(err) => {
                let eof = is_at_end(err.position(), code);
                let incomplete = match err.err_type() {
                    ParseErrorType::UnexpectedEOF => true,
                    // Reported at the opening quote, not at the end.
                    ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => true,
                    ParseErrorType::MissingToken(..)
                    | ParseErrorType::MissingSymbol(..)
                    | ParseErrorType::ExprExpected(..) => eof,
                    _ => false,
                };
                if incomplete {
                    IsComplete::Incomplete("    ".into())
                } else {
                    IsComplete::Invalid
                }
            }
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_') && chars.all(is_ident_char)
}

/// Start (in chars) of the identifier that ends at `cursor`.
fn ident_start(chars: &[char], cursor: usize) -> usize {
    let mut start = cursor;
    while start > 0 && is_ident_char(chars[start - 1]) {
        start -= 1;
    }
    start
}

/// Whether a parse error lies at (or past) the end of the input: Rhai reports
/// running out of input there, or with no position.
fn is_at_end(pos: Position, code: &str) -> bool {
    let (Some(line), Some(col)) = (pos.line(), pos.position()) else { return true };
    let trimmed = code.trim_end();
    let last_line_no = trimmed.lines().count().max(1);
    let last_line_len = trimmed.lines().last().map_or(0, |l| l.chars().count());
    line > last_line_no || (line == last_line_no && col > last_line_len)
}

/// A value's notebook output as a MIME bundle (PNG base64-encoded).
fn display(out: &crate::notebook::Output) -> DisplayValue {
    let mut media = Vec::new();
    for (mime, content) in &out.items {
        match (*mime, content) {
            ("text/plain", Content::Text(t)) => media.push(MediaType::Plain(t.clone())),
            ("text/html", Content::Text(t)) => media.push(MediaType::Html(t.clone())),
            ("image/png", Content::Bytes(b)) => media.push(MediaType::Png(data_encoding::BASE64.encode(b))),
            _ => {}
        }
    }
    if !media.iter().any(|m| matches!(m, MediaType::Plain(_))) {
        media.push(MediaType::Plain(String::new()));
    }
    DisplayValue { media }
}

/// A cell's error for Jupyter: the message as `epic run` prints it (`cell
/// N:line:col: …`, with the signatures that exist for a wrong call), and the
/// cell's line with a caret under the column.
fn exec_error(e: &ScriptError, code: &str, interrupted: bool) -> ExecError {
    let ename = if interrupted { "Interrupted" } else { "ScriptError" }.to_string();
    let mut evalue = e.to_string();
    if interrupted && !evalue.contains("interrupted during") {
        // A pure-script loop stopped by the flag: say so as epic does.
        evalue = format!("{}: interrupted; the cell stopped at its next operation", e.file.display());
    }
    let mut traceback = vec![evalue.clone()];
    if let (Some(line), Some(src)) = (e.line, e.line.and_then(|l| code.lines().nth(l - 1))) {
        traceback.push(format!("{line:>4} | {src}"));
        if let Some(col) = e.column {
            traceback.push(format!("     | {}^", " ".repeat(col.saturating_sub(1))));
        }
    }
    ExecError { ename, evalue, traceback }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut Cells, code: &str) -> (Vec<ExecEvent>, Result<Option<DisplayValue>, ExecError>) {
        let (tx, mut rx) = tmpsc::unbounded_channel();
        let r = c.execute(code, &tx);
        drop(tx);
        let mut evs = Vec::new();
        while let Ok(e) = rx.try_recv() {
            evs.push(e);
        }
        (evs, r)
    }

    fn plain(v: &DisplayValue) -> &str {
        v.media
            .iter()
            .find_map(|m| match m {
                MediaType::Plain(t) => Some(t.as_str()),
                _ => None,
            })
            .unwrap_or("")
    }

    fn cells() -> Cells {
        Cells::new(HostOptions::default(), Sink::default())
    }

    #[test]
    fn cells_share_a_scope_print_to_stdout_and_fail_with_their_position() {
        let mut c = cells();
        assert_eq!(plain(&run(&mut c, "let x = 40 + 2; x").1.unwrap().unwrap()), "42");
        run(&mut c, "fn double(a) { a * 2 }").1.unwrap();
        assert_eq!(plain(&run(&mut c, "double(x)").1.unwrap().unwrap()), "84");
        let (evs, r) = run(&mut c, "print(\"hi\");");
        assert!(r.unwrap().is_none());
        assert!(matches!(&evs[0], ExecEvent::Stdout(t) if t == "hi\n"));
        let e = run(&mut c, "let y = x;\nrotate(y, 2)").1.unwrap_err();
        assert!(e.evalue.starts_with("cell 5:2:1: rotate cannot take arguments"), "{e:?}");
        assert_eq!(e.traceback[1], "   2 | rotate(y, 2)");
        assert_eq!(plain(&run(&mut c, "y").1.unwrap().unwrap()), "42");
    }

    #[test]
    fn completion_and_inspection_read_the_engine_and_the_scope() {
        let mut c = cells();
        run(&mut c, "let counter = 1;").1.unwrap();
        let m = c.complete("purity_", 7).matches;
        assert!(m.contains(&"purity_argmax".to_string()), "{m:?}");
        let done = c.complete("1 + cou", 7);
        assert_eq!((done.matches, done.cursor_start), (vec!["counter".to_string()], 4));
        // Code points, not bytes.
        assert_eq!(c.complete("\"é\" + cou", 9).cursor_start, 6);
        let doc = c.inspect("explain(d, bank, image, opts)", 3).unwrap();
        let entries = crate::script::docs::lookup("explain");
        assert!(!entries.is_empty() && entries.iter().all(|e| doc.contains(&e.text())), "{doc}");
        assert!(c.inspect("counter", 7).unwrap().starts_with("counter: i64\n1"));
        assert!(c.inspect("zzz", 1).is_none());
    }

    #[test]
    fn is_complete_knows_an_open_block_from_a_broken_one() {
        let mut c = cells();
        assert_eq!(c.is_complete("let x = 1;"), IsComplete::Complete);
        assert!(matches!(c.is_complete("fn f() {"), IsComplete::Incomplete(_)));
        assert!(matches!(c.is_complete("let s = \"abc"), IsComplete::Incomplete(_)));
        assert_eq!(c.is_complete("let = 5; 1"), IsComplete::Invalid);
    }

    #[test]
    fn an_interrupted_loop_stops_and_the_scope_keeps_what_it_had() {
        let mut c = cells();
        let t = std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            crate::interrupt::request();
        });
        let e = run(&mut c, "let before = 7;\nlet i = 0;\nloop { i += 1; }").1.unwrap_err();
        t.join().unwrap();
        assert_eq!(e.ename, "Interrupted", "{e:?}");
        assert!(e.evalue.contains("interrupted"), "{e:?}");
        assert_eq!(plain(&run(&mut c, "before + 1").1.unwrap().unwrap()), "8");
    }
}
