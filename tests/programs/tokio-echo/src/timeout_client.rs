//! A tokio client with its own timeouts, for the blackhole toxic: every 200 ms it connects to
//! ADDR, sends a line and waits at most 1 s (tokio's timer) for the echo. It prints `timeout MS`
//! or `ok MS` per attempt, and exits 0 once an attempt succeeded after one timed out ("recovered"),
//! 1 if that has not happened within 30 s.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn attempt(addr: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"ping\n").await?;
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await?;
    if &buf != b"ping\n" {
        return Err(std::io::Error::other("wrong echo"));
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .expect("usage: tokio-timeout-client HOST:PORT");
    let start = Instant::now();
    let mut timed_out = false;
    while start.elapsed() < Duration::from_secs(30) {
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(1), attempt(&addr)).await {
            Ok(Ok(())) => {
                println!("ok {}", t.elapsed().as_millis());
                if timed_out {
                    println!("recovered");
                    return;
                }
            }
            Ok(Err(e)) => println!("error {e}"),
            Err(_) => {
                println!("timeout {}", t.elapsed().as_millis());
                timed_out = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::process::exit(1);
}
