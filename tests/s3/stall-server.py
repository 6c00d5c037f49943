#!/usr/bin/python3
"""A server that accepts TCP connections and never answers: the stalled store
of the S3 timeout test.  Writes its port to the given file, then sleeps.

usage: stall-server.py PORT_FILE
"""
import os
import socket
import sys
import threading


def hold(conn):
    # Read whatever comes so that the client's send completes, answer nothing.
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=hold, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
