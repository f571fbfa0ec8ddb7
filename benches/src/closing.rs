//! The peer of the connect benchmarks: a plain async-io server on its own
//! executor that reads each connection to its end, then closes it, the
//! same for every client kind (the `smol` bench and the `connects`
//! example).

use std::net::{SocketAddr, TcpListener};

use async_io::Async;
use futures_lite::AsyncReadExt;

/// A listening socket on 127.0.0.1 with a deep backlog, so clients that
/// drop their connections without waiting never outrun its accepts into a
/// full queue (a dropped SYN costs a 1 s retransmission).
pub fn bind() -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(4096).unwrap();
    TcpListener::from(socket)
}

/// Serves `listener` on this thread, forever.
pub fn run(listener: TcpListener) {
    let ex = async_executor::Executor::new();
    let listener = Async::new(listener).unwrap();
    async_io::block_on(ex.run(async {
        while let Ok((mut s, _)) = listener.accept().await {
            ex.spawn(async move {
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            })
            .detach();
        }
    }));
}

/// The server on a thread of this process; its address.
pub fn spawn() -> SocketAddr {
    let listener = bind();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || run(listener));
    at
}
