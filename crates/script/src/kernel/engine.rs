//! The engine thread: one `Session` (the prompt's), fed requests in order. Its outputs (streams,
//! displays, results, errors) and then its reply go back as [`Event`]s; the capture is synced
//! before each display so text printed earlier comes first.

use super::capture::{Capture, Stream};
use crate::complete::incomplete;
use crate::session::{Failure, Session};
use crate::show::{self, Rich};
use base64::Engine as _;
use jupyter_protocol::{
    CompleteReply, DisplayData, ErrorOutput, ExecuteInput, ExecuteReply, ExecuteResult,
    ExecutionCount, HistoryReply, InspectReply, IsCompleteReply, JupyterMessageContent as C, Media,
    MediaType, ReplyError, ReplyStatus, StreamContent,
};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// What the engine thread sends back.
pub enum Event {
    /// An iopub message for the current request.
    Output(C),
    /// The reply that ends the current request.
    Reply(C),
}

impl Event {
    pub fn stream(stream: Stream, text: String) -> Event {
        Event::Output(C::StreamContent(match stream {
            Stream::Stdout => StreamContent::stdout(&text),
            Stream::Stderr => StreamContent::stderr(&text),
        }))
    }
}

/// Starts the engine thread; requests go in through the returned sender.
pub fn start(
    events: UnboundedSender<Event>,
    capture: Arc<Capture>,
) -> std::io::Result<std::sync::mpsc::Sender<C>> {
    let (tx, rx) = std::sync::mpsc::channel::<C>();
    std::thread::Builder::new()
        .name("engine".into())
        // The prompt runs on the main thread (8 MiB); deep scripts need the same room here.
        .stack_size(64 << 20)
        .spawn(move || {
            let mut kernel = Kernel {
                session: Session::default(),
                count: 0,
                events: events.clone(),
                capture: capture.clone(),
            };
            let (ev, cap) = (events, capture);
            show::set_display(Box::new(move |r: Rich| {
                cap.sync();
                let _ = ev.send(Event::Output(C::DisplayData(DisplayData::new(media(r)))));
            }));
            while let Ok(req) = rx.recv() {
                let reply = kernel.handle(req);
                kernel.capture.sync();
                let _ = kernel.events.send(Event::Reply(reply));
            }
        })?;
    Ok(tx)
}

struct Kernel {
    session: Session,
    count: usize,
    events: UnboundedSender<Event>,
    capture: Arc<Capture>,
}

/// A value's text, HTML and pictures as a Jupyter mime bundle.
pub fn media(r: Rich) -> Media {
    let mut m = vec![MediaType::Plain(r.plain)];
    if let Some(h) = r.html {
        m.push(MediaType::Html(h));
    }
    if let Some(p) = r.png {
        m.push(MediaType::Png(
            base64::engine::general_purpose::STANDARD.encode(p),
        ));
    }
    if let Some(s) = r.svg {
        m.push(MediaType::Svg(s));
    }
    Media::new(m)
}

/// Byte offset of the `chars`-th character of `s` (Jupyter counts cursor positions in characters).
fn byte_at(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn chars_before(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

impl Kernel {
    fn output(&self, c: C) {
        let _ = self.events.send(Event::Output(c));
    }

    fn handle(&mut self, req: C) -> C {
        match req {
            C::ExecuteRequest(r) => self.execute(&r.code, r.store_history && !r.silent),
            C::CompleteRequest(r) => {
                let cursor = byte_at(&r.code, r.cursor_pos);
                let (start, matches) = self.session.complete(&r.code, cursor);
                C::CompleteReply(CompleteReply {
                    matches,
                    cursor_start: chars_before(&r.code, start),
                    cursor_end: r.cursor_pos,
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                })
            }
            C::InspectRequest(r) => {
                let text = self
                    .session
                    .inspect(&r.code, byte_at(&r.code, r.cursor_pos));
                C::InspectReply(InspectReply {
                    found: text.is_some(),
                    data: text
                        .map_or_else(Media::default, |t| Media::new(vec![MediaType::Plain(t)])),
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                })
            }
            C::IsCompleteRequest(r) => {
                let parser = rhai::Engine::new_raw();
                C::IsCompleteReply(if r.code.trim().is_empty() {
                    IsCompleteReply::complete()
                } else if incomplete(&parser, &r.code) {
                    IsCompleteReply::incomplete("    ".into())
                } else if parser.compile(&r.code).is_err() {
                    IsCompleteReply::invalid()
                } else {
                    IsCompleteReply::complete()
                })
            }
            C::HistoryRequest(_) => C::HistoryReply(HistoryReply::new(Vec::new())),
            other => C::ExecuteReply(ExecuteReply {
                status: ReplyStatus::Error,
                error: Some(Box::new(ReplyError {
                    ename: "Unsupported".into(),
                    evalue: format!(
                        "{} is not a request the engine serves",
                        other.message_type()
                    ),
                    traceback: vec![],
                })),
                ..Default::default()
            }),
        }
    }

    fn execute(&mut self, code: &str, counted: bool) -> C {
        if counted {
            self.count += 1;
        }
        let count = ExecutionCount::new(self.count);
        self.output(C::ExecuteInput(ExecuteInput {
            code: code.to_string(),
            execution_count: count,
        }));
        let outcome = match self.session.command(code) {
            Some(text) => {
                println!("{text}");
                Ok(rhai::Dynamic::UNIT)
            }
            None => self.session.eval(code),
        };
        self.capture.sync();
        match outcome {
            Ok(v) => {
                if !v.is_unit() {
                    let r = show::rich(&self.session.engine, &v);
                    let mut result = ExecuteResult::new(count, media(r));
                    result.transient = Some(Default::default());
                    self.output(C::ExecuteResult(result));
                }
                C::ExecuteReply(ExecuteReply {
                    status: ReplyStatus::Ok,
                    execution_count: count,
                    user_expressions: Some(Default::default()),
                    ..Default::default()
                })
            }
            Err(f) => {
                let e = error_output(&f);
                self.output(C::ErrorOutput(e.clone()));
                C::ExecuteReply(ExecuteReply {
                    status: ReplyStatus::Error,
                    execution_count: count,
                    user_expressions: Some(Default::default()),
                    error: Some(Box::new(ReplyError {
                        ename: e.ename,
                        evalue: e.evalue,
                        traceback: e.traceback,
                    })),
                    ..Default::default()
                })
            }
        }
    }
}

/// The prompt's report (line, position, source line, caret) as a traceback.
fn error_output(f: &Failure) -> ErrorOutput {
    ErrorOutput {
        ename: f.kind.to_string(),
        evalue: f.message.clone(),
        traceback: f.report.lines().map(str::to_string).collect(),
    }
}
