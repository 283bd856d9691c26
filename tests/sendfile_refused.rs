//! Large bodies when a sandbox refuses sendfile (a seccomp filter such as systemd's
//! `SystemCallFilter=` answering EPERM): `tributary::http::zerocopy` falls back to copying
//! from the mapped file, and every byte still arrives. A test binary of its own: the
//! refusal is remembered process-wide.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use tributary::http::deadline::Deadlines;
use tributary::http::zerocopy::{self, Connection};

/// Makes sendfile fail with EPERM on the calling thread (and threads it starts).
fn refuse_sendfile_on_this_thread() {
    let instruction = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut program = [
        // The syscall number: the first field of seccomp_data.
        instruction(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        instruction(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_sendfile as u32,
            0,
            1,
        ),
        instruction(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            0,
            0,
        ),
        instruction(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let filter = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: prctl with the documented arguments; `filter` outlives the call (the
    // kernel copies the program).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const filter,
            ),
            0,
            "installing the filter: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// One request on a fresh connection; the whole response.
fn get(address: SocketAddr) -> Vec<u8> {
    let mut client = TcpStream::connect(address).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    received
}

#[test]
fn large_bodies_arrive_whole_when_sendfile_is_refused() {
    let document: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
    let [body] = zerocopy::file_backed([document.clone()]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        refuse_sendfile_on_this_thread();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // The first response meets the refusal, the second copies from the start.
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                let body: Bytes = body.clone();
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                tributary::http::connection_builder()
                    .serve_connection(Connection::new(stream, Deadlines::progress()), service)
                    .await
                    .unwrap();
            }
        });
    });
    for _ in 0..2 {
        let received = get(address);
        let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&received[..split]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("content-length: 3000000"), "{head}");
        assert!(
            received[split..] == document[..],
            "the body arrived altered ({} bytes)",
            received.len() - split
        );
    }
    server.join().unwrap();
    assert_eq!(
        zerocopy::bytes_sent_with_sendfile(),
        0,
        "sendfile was not refused: the fallback went untested"
    );
}
