//! The Jupyter kernel: a notebook front end over the same engine as the prompt
//! (`script::session`). Protocol 5.3 over ZeroMQ (`jupyter-zmq-client`), every incoming message's
//! HMAC-SHA256 signature checked (a bad one is dropped and logged). The engine runs on its own
//! thread and the sockets on an async runtime, so the control channel (interrupt, shutdown) is
//! served while a cell runs; an interrupt sets the same cancel flag as Ctrl-C at the prompt.

mod capture;
mod engine;
pub mod spec;

use capture::Capture;
use engine::Event;
use jupyter_protocol::{
    CodeMirrorMode, CommInfoReply, ConnectionInfo, HelpLink, InterruptReply, JupyterMessage,
    JupyterMessageContent as C, KernelInfoReply, LanguageInfo, ReplyStatus, ShutdownReply, Status,
};
use jupyter_zmq_client as zmq;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The kernel's log: the original stderr (the process's own stderr is the cells' output).
type Log = Arc<Mutex<std::fs::File>>;

fn note(log: &Log, what: std::fmt::Arguments) {
    let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(f, "patholab kernel: {what}");
}

/// Runs the kernel described by `connection_file` until a shutdown request.
pub fn run(connection_file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(connection_file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", connection_file.display()))?;
    let info: ConnectionInfo = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", connection_file.display()))?;
    if info.signature_scheme != "hmac-sha256" {
        anyhow::bail!(
            "{}: signature scheme {:?}; this kernel signs with hmac-sha256",
            connection_file.display(),
            info.signature_scheme
        );
    }
    let (events, events_rx) = mpsc::unbounded_channel::<Event>();
    let to_events = events.clone();
    let (capture, log_file) = Capture::start(move |stream, text| {
        let _ = to_events.send(Event::stream(stream, text));
    })?;
    let log: Log = Arc::new(Mutex::new(log_file));
    patholab_core::progress::set_carriage_return(true);
    // Signal mode (`kill -INT`) works as well as interrupt_request.
    patholab_core::cancel::install_interrupt_handler();
    let requests = engine::start(events, Arc::new(capture))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(info, requests, events_rx, log))
}

/// Answers `kernel_info_request`.
fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "patholab".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rhai".into(),
            version: "1".into(),
            mimetype: Some("text/x-rhai".into()),
            file_extension: Some(".rhai".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: Some("script".into()),
        },
        banner: format!(
            "patholab {} (Rhai, libtorch {}): help for help, Tab completes, Shift-Tab shows help",
            env!("CARGO_PKG_VERSION"),
            patholab_core::LIBTORCH_VERSION
        ),
        help_links: vec![HelpLink {
            text: "The Rhai language".into(),
            url: "https://rhai.rs/book/".into(),
        }],
        debugger: false,
        error: None,
    }
}

async fn serve(
    info: ConnectionInfo,
    requests: std::sync::mpsc::Sender<C>,
    mut events: mpsc::UnboundedReceiver<Event>,
    log: Log,
) -> anyhow::Result<()> {
    let session = uuid::Uuid::new_v4().to_string();
    let mut heartbeat = zmq::create_kernel_heartbeat_connection(&info).await?;
    let mut shell = zmq::create_kernel_shell_connection(&info, &session).await?;
    let mut control = zmq::create_kernel_control_connection(&info, &session).await?;
    let _stdin = zmq::create_kernel_stdin_connection(&info, &session).await?;
    let mut iopub = zmq::create_kernel_iopub_connection(&info, &session).await?;

    let (publish, mut to_publish) = mpsc::unbounded_channel::<JupyterMessage>();
    tokio::spawn(async move {
        while let Some(m) = to_publish.recv().await {
            let _ = iopub.send(m).await;
        }
    });
    tokio::spawn(async move { while heartbeat.single_heartbeat().await.is_ok() {} });
    {
        let (publish, log) = (publish.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let msg = match control.read().await {
                    Ok(m) => m,
                    Err(e) if transport_failed(&e) => break,
                    Err(e) => {
                        note(&log, format_args!("control: message dropped: {}", why(&e)));
                        continue;
                    }
                };
                let _ = publish.send(Status::busy().as_child_of(&msg));
                match &msg.content {
                    C::InterruptRequest(_) => {
                        patholab_core::cancel::request();
                        let _ = control.send(InterruptReply::new().as_child_of(&msg)).await;
                    }
                    C::KernelInfoRequest(_) => {
                        let _ = control.send(kernel_info().as_child_of(&msg)).await;
                    }
                    C::ShutdownRequest(r) => {
                        shutdown(&mut control, &publish, &msg, r.restart).await;
                    }
                    other => note(
                        &log,
                        format_args!("control: {} not handled", other.message_type()),
                    ),
                }
                let _ = publish.send(Status::idle().as_child_of(&msg));
            }
        });
    }
    let _ = publish.send(JupyterMessage::new(Status::starting(), None));

    loop {
        let msg = match shell.read().await {
            Ok(m) => m,
            Err(e) if transport_failed(&e) => return Err(e.into()),
            Err(e) => {
                note(&log, format_args!("shell: message dropped: {}", why(&e)));
                continue;
            }
        };
        let _ = publish.send(Status::busy().as_child_of(&msg));
        match &msg.content {
            C::KernelInfoRequest(_) => {
                shell.send(kernel_info().as_child_of(&msg)).await?;
            }
            C::CommInfoRequest(_) => {
                let reply = CommInfoReply {
                    status: ReplyStatus::Ok,
                    comms: Default::default(),
                    error: None,
                };
                shell.send(reply.as_child_of(&msg)).await?;
            }
            C::ShutdownRequest(r) => shutdown(&mut shell, &publish, &msg, r.restart).await,
            C::ExecuteRequest(_)
            | C::CompleteRequest(_)
            | C::InspectRequest(_)
            | C::IsCompleteRequest(_)
            | C::HistoryRequest(_) => {
                let silent = matches!(&msg.content, C::ExecuteRequest(r) if r.silent);
                requests.send(msg.content.clone())?;
                // Outputs go out as they come; the reply ends the request.
                while let Some(ev) = events.recv().await {
                    match ev {
                        Event::Output(c) if !silent => {
                            let _ = publish.send(JupyterMessage::new(c, Some(&msg)));
                        }
                        Event::Output(_) => {}
                        Event::Reply(c) => {
                            shell.send(JupyterMessage::new(c, Some(&msg))).await?;
                            break;
                        }
                    }
                }
            }
            other => note(
                &log,
                format_args!("shell: {} not handled", other.message_type()),
            ),
        }
        let _ = publish.send(Status::idle().as_child_of(&msg));
    }
}

/// Why a message was refused, for the log.
fn why(e: &zmq::RuntimeError) -> String {
    match e {
        zmq::RuntimeError::VerifyError(_) | zmq::RuntimeError::DecodeError(_) => {
            "its HMAC-SHA256 signature does not match the connection key".into()
        }
        zmq::RuntimeError::MissingHmac => "it has no signature".into(),
        other => other.to_string(),
    }
}

/// True for errors of the socket itself (as opposed to one bad message).
fn transport_failed(e: &zmq::RuntimeError) -> bool {
    matches!(
        e,
        zmq::RuntimeError::ZmqError(_) | zmq::RuntimeError::IoError(_)
    )
}

/// Replies to a shutdown request (on its channel and on iopub) and ends the process; a restart
/// is the client's to do (it starts a new process).
async fn shutdown(
    channel: &mut zmq::KernelShellConnection,
    publish: &mpsc::UnboundedSender<JupyterMessage>,
    msg: &JupyterMessage,
    restart: bool,
) {
    let reply = ShutdownReply {
        restart,
        status: ReplyStatus::Ok,
        error: None,
    };
    let _ = channel.send(reply.clone().as_child_of(msg)).await;
    let _ = publish.send(reply.as_child_of(msg));
    let _ = publish.send(Status::idle().as_child_of(msg));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    std::process::exit(0);
}
