//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! it reads commands from fd 3 and writes replies and events to fd 4, each a JSON message
//! ended by a NUL byte).
//!
//! A client crate (headless_chrome) would turn on more features of crates attnx shares with it
//! (syn, rand), so that `cargo test` would compile burn a second time (.ci/check-build-graph);
//! the pipe needs nothing beyond serde_json and libc, which attnx already has.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// How long a command may take before the test fails (Chromium hung or died).
const TIMEOUT: Duration = Duration::from_secs(120);

/// The flags that keep Chromium off the network (these machines have none) and let it run as
/// root, in a profile of its own.
fn flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        // Containers often give /dev/shm 64 MB, too little for a long page's screenshot.
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|f| f.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Chromium: `$ATTNX_CHROMIUM`, else the first of the usual names on `PATH`; the test fails
/// (never skips) without it.
pub fn executable() -> PathBuf {
    if let Some(path) = std::env::var_os("ATTNX_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("no Chromium on PATH: this test needs it (`apt-get install chromium`; .ci/run installs it)")
        })
}

/// A running Chromium and one page (tab) in it.
pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Console errors, uncaught exceptions and failed loads since the last [`Browser::errors`].
    errors: Vec<String>,
    loaded: bool,
}

impl Browser {
    /// Starts Chromium with a profile in `profile` and opens a blank page.
    pub fn start(profile: &Path) -> Browser {
        let (their_in, to) = std::io::pipe().unwrap();
        let (from, their_out) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (their_in.as_raw_fd(), their_out.as_raw_fd());
        let mut command = Command::new(executable());
        command
            .args(flags(profile))
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec the closure only calls async-signal-safe fcntl and
        // dup2 on descriptors this process owns (the pipe's ends stay open until spawn returns).
        // The ends are first copied above 10, so that placing one at 3 cannot close the other.
        unsafe {
            command.pre_exec(move || {
                let read = libc::fcntl(read_fd, libc::F_DUPFD, 10);
                let write = libc::fcntl(write_fd, libc::F_DUPFD, 10);
                if read < 0 || write < 0 || libc::dup2(read, 3) < 0 || libc::dup2(write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start Chromium: {e} (this test needs it: `apt-get install chromium`)")
        });
        drop((their_in, their_out));
        let (sender, receiver) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop();
                        let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                            continue;
                        };
                        if sender.send(value).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to,
            from: receiver,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
            loaded: false,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sends a command (to the page once one is attached) and waits for its reply.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let reply = self.next_message(method);
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    panic!("Chromium refused {method}: {error}");
                }
                return reply["result"].clone();
            }
        }
    }

    /// The next message, events noted on the way.
    fn next_message(&mut self, waiting_for: &str) -> Value {
        let message = match self.from.recv_timeout(TIMEOUT) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                panic!("Chromium did not answer {waiting_for} in {TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("Chromium closed its pipe while we waited for {waiting_for}")
            }
        };
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => {
                self.errors.push(format!(
                    "uncaught exception: {}",
                    params["exceptionDetails"]["text"]
                ));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!(
                    "console: {} ({})",
                    params["entry"]["text"].as_str().unwrap_or(""),
                    params["entry"]["url"].as_str().unwrap_or("")
                ));
            }
            Some("Page.loadEventFired") => self.loaded = true,
            _ => {}
        }
        message
    }

    /// Sets the window to `width` x `height` CSS pixels (`mobile`: as a phone lays pages out).
    pub fn window(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Opens `url` and waits for its load event (images included).
    pub fn open(&mut self, url: &str) {
        self.loaded = false;
        let navigated = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = navigated.get("errorText") {
            panic!("{url}: {error}");
        }
        while !self.loaded {
            self.next_message("the page's load event");
        }
    }

    /// The value of a JavaScript expression (a promise is awaited).
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("the page's script failed: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// The errors seen since the last call.
    pub fn errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PNG screenshot of `url` in a `width` x `height` window, by Chromium's own
/// `--screenshot` (a separate run, so no image data crosses the pipe).
pub fn screenshot(url: &str, width: u32, height: u32, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(executable())
        .args(flags(profile.path()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("Chromium's screenshot of {url} took over {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "Chromium's screenshot of {url} failed");
    let bytes = std::fs::read(png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{}: not a PNG",
        png.display()
    );
}
