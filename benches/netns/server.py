"""The service first-byte.sh measures against: on every connection it sends
a short HTTP/1.0 reply at once and ends its side (so a client that sends
nothing, like tapscat with no input, sees the end too), then reads what the
client sends until it closes, so nobody is reset."""

import socket
import sys
import threading

REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def serve(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(5)
        try:
            conn.sendall(REPLY)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
        except OSError:
            pass


listener = socket.create_server(("::", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
