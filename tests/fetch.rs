//! `attnx data fetch imdb` against an HTTP server on 127.0.0.1 started by the test: a good
//! download, a wrong checksum, and a connection cut half-way.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use predicates::prelude::*;

mod common;
use common::attnx;

/// Serves requests until the test ends, counting them: `/good` sends `body` whole, `/cut`
/// announces it whole but closes after half of it.
fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream.unwrap();
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let sent = if request_line.contains("/cut") {
                &body[..body.len() / 2]
            } else {
                &body[..]
            };
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(sent);
            let _ = stream.flush();
        }
    });
    (address, requests)
}

fn cache_files(cache: &Path) -> Vec<String> {
    match std::fs::read_dir(cache.join("attnx")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn fetch_keeps_only_complete_verified_downloads() {
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha = attnx::fsutil::sha256_hex(&body);
    let (server, requests) = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    // `attnx data fetch imdb` from the server's `path`, checked against this body's sha256 or
    // (without it) the official archive's.
    let fetch = |path: &str, own_sha: bool| {
        let url = format!("{server}/{path}");
        let mut args = vec!["data", "fetch", "imdb", "--url", &url];
        if own_sha {
            args.extend(["--sha256", &sha]);
        }
        attnx(dir.path()).args(&args).assert()
    };

    // Cut half-way: an error, and nothing left behind.
    fetch("cut", true)
        .code(1)
        .stderr(predicate::str::contains("broke off"));
    assert!(cache_files(&cache).is_empty(), "{:?}", cache_files(&cache));

    // The official checksum does not match this body: refused, nothing saved.
    fetch("good", false)
        .code(1)
        .stderr(predicate::str::contains(
            "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
        ));
    assert!(cache_files(&cache).is_empty(), "{:?}", cache_files(&cache));

    // A good download lands under its final name, byte for byte.
    let fetch_good = || fetch("good", true).success();
    fetch_good();
    assert_eq!(cache_files(&cache), ["aclImdb_v1.tar.gz"]);
    assert_eq!(
        std::fs::read(cache.join("attnx/aclImdb_v1.tar.gz")).unwrap(),
        body
    );

    assert_eq!(requests.load(Ordering::SeqCst), 3);

    // Already there: nothing to do, and the server is not asked again.
    fetch_good().stderr(predicate::str::contains("already there"));
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "a request for a file already there"
    );
}
