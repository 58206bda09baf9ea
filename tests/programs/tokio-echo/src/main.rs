//! A tokio echo server and CLIENTS concurrent clients in one process, on a two-worker runtime. mio
//! registers every socket edge-triggered and treats WouldBlock as "wait for the next edge", so a fake
//! EAGAIN or short transfer that is not re-armed hangs it. Exits 0 when every byte came back intact.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: usize = 8;
const BYTES: usize = 512 * 1024;

fn pattern(id: usize, i: usize) -> u8 {
    (id * 131 + i * 7 + (i >> 9)) as u8
}

async fn client(addr: std::net::SocketAddr, id: usize) -> std::io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..BYTES).map(|i| pattern(id, i)).collect();
        for chunk in data.chunks(16 * 1024) {
            wr.write_all(chunk).await?;
        }
        wr.shutdown().await
    });
    let mut got = Vec::with_capacity(BYTES);
    rd.read_to_end(&mut got).await?;
    writer.await??;
    assert_eq!(got.len(), BYTES, "client {id}: short echo");
    for (i, b) in got.iter().enumerate() {
        assert_eq!(*b, pattern(id, i), "client {id}: corrupt at {i}");
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.expect("accept");
            tokio::spawn(async move {
                let (mut rd, mut wr) = sock.split();
                tokio::io::copy(&mut rd, &mut wr).await.expect("echo");
                wr.shutdown().await.expect("shutdown");
            });
        }
    });
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id)))
        .collect();
    for t in tasks {
        t.await.expect("client task")?;
    }
    println!("ok {CLIENTS} clients x {BYTES} bytes echoed");
    Ok(())
}
