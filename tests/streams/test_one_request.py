#!/usr/bin/env python3
"""A method that takes one request message (unary, server streaming) gets
exactly one (issue 12 item 4): a gRPC-Web request carrying a second message
is refused by the gateway with INTERNAL before any byte of that message is
forwarded — binary, text and +json; the second message in the same chunk,
in a later chunk while the call is in flight, or only its first byte. The
same for Connect's streaming protocol (server-streaming method, two
envelopes). Client-streaming methods still take any number, one message
still works, and REST cannot carry two. Against the demo service and the
grpc-js server (both reject a second message themselves, each with its own
code and words, when it reaches them)."""
import base64
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "front"))
from gwtest import Conn, Procs, frame, pb_string, pb_varint, request  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sweep import GRPCJS, NODE, node_ok  # noqa: E402

WANT = "takes one request message; the request carries more"
CT = {"bin": "application/grpc-web+proto", "text": "application/grpc-web-text",
      "json": "application/grpc-web+json"}


def send_chunks(port, path, mode, chunks, pause=0.3):
    """POSTs the chunks (already encoded for the mode) with chunked
    encoding, pausing between them; returns the response."""
    c = Conn(port, timeout=30)
    try:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nX-Grpc-Web: 1\r\n"
                "Grpc-Timeout: 20S\r\nTransfer-Encoding: chunked\r\n\r\n" % (path, CT[mode])).encode())
        for i, ch in enumerate(chunks):
            if i:
                time.sleep(pause)
            try:
                c.send(b"%x\r\n" % len(ch) + ch + b"\r\n")
            except OSError:
                break  # the gateway answered and closed: the answer says why
        try:
            c.send(b"0\r\n\r\n")
        except OSError:
            pass
        return c.read_response()
    finally:
        c.close()


def status_of(r, mode):
    """(grpc-status, grpc-message) from the headers (Trailers-Only) or the
    trailer frame."""
    if r.header("grpc-status") is not None:
        return int(r.header("grpc-status")), r.header("grpc-message")
    if mode == "text":
        r.body = b"".join(base64.b64decode(r.body[i:i + 4]) for i in range(0, len(r.body), 4))
    return r.grpc_status()


def msg(kind, mode, i):
    """The i-th request message of the method, as a frame for the mode."""
    # The backend answers late (Echo sleeps 2 s; ListUsers sends 3 users
    # 1 s apart), so a second message sent 0.3 s after the first meets a
    # call still in flight.
    if kind == "echo":
        m = ({"message": "m%d" % i, "delay": "2s"} if mode == "json" else
             pb_string(1, "m%d" % i) + pb_string(3, pb_varint(1, 2)))
    elif kind == "list":
        m = ({"pageSize": 3, "delay": "1s"} if mode == "json" else
             pb_varint(1, 3) + pb_string(2, pb_varint(1, 1)))
    else:
        m = ({"name": "n%d" % i, "email": "n%d@x" % i} if mode == "json" else
             pb_string(2, "n%d" % i) + pb_string(3, "n%d@x" % i))
    return frame(json.dumps(m).encode() if mode == "json" else m)


def enc(mode, b):
    return base64.b64encode(b) if mode == "text" else b


PATHS = {"echo": "/demo.v1.EchoService/Echo", "list": "/demo.v1.UserService/ListUsers",
         "create": "/demo.v1.UserService/CreateUsers"}


class OneRequest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = Procs()
        cls.ports = {}
        _, url = cls.procs.demo()
        _, cls.ports["demo"] = cls.procs.gateway(url)
        if node_ok():
            _, m = cls.procs.start([NODE, GRPCJS, "--port", "0"], r"listening (\d+)", "grpcjs")
            _, cls.ports["grpcjs"] = cls.procs.gateway("http://127.0.0.1:" + m.group(1))

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()

    def test_second_message_refused(self):
        for backend, port in self.ports.items():
            for kind in ("echo", "list"):
                for mode in ("bin", "text", "json"):
                    one, two = msg(kind, mode, 1), msg(kind, mode, 2)
                    shapes = {
                        "same chunk": [enc(mode, one + two)],
                        "later chunk": [enc(mode, one), enc(mode, two)],
                        # text: a 3-byte group keeps base64 whole
                        "first byte": [enc(mode, one), enc(mode, two[:3] if mode == "text"
                                                           else two[:1])],
                    }
                    for shape, chunks in shapes.items():
                        with self.subTest(backend=backend, kind=kind, mode=mode, shape=shape):
                            r = send_chunks(port, PATHS[kind], mode, chunks)
                            self.assertEqual(r.status, 200)
                            code, message = status_of(r, mode)
                            self.assertEqual(code, 13, message)
                            self.assertIn(WANT, message or "")
                            self.assertIn(PATHS[kind], message)

    def test_one_message_and_client_streaming_still_work(self):
        for backend, port in self.ports.items():
            for mode in ("bin", "text", "json"):
                with self.subTest(backend=backend, mode=mode, what="unary, one message"):
                    r = send_chunks(port, PATHS["echo"], mode, [enc(mode, msg("echo", mode, 1))])
                    self.assertEqual(status_of(r, mode)[0], 0)
                with self.subTest(backend=backend, mode=mode, what="client streaming, three"):
                    body = b"".join(msg("create", mode, i) for i in range(3))
                    r = send_chunks(port, PATHS["create"], mode, [enc(mode, body[:7]),
                                                                  enc(mode, body[7:])]
                                    if mode != "text" else [enc(mode, body)])
                    self.assertEqual(status_of(r, mode)[0], 0)

    def test_connect_stream_second_message_refused(self):
        # Connect's streaming protocol frames messages like gRPC-Web: a
        # server-streaming method given two envelopes is refused the same way.
        for backend, port in self.ports.items():
            for mode, ct in (("bin", "application/connect+proto"),
                             ("json", "application/connect+json")):
                one, two = msg("list", mode, 1), msg("list", mode, 2)
                shapes = {"same chunk": [one + two], "later chunk": [one, two],
                          "first byte": [one, two[:1]]}
                for shape, chunks in shapes.items():
                    with self.subTest(backend=backend, mode=mode, shape=shape):
                        c = Conn(port, timeout=30)
                        try:
                            c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                                    "Connect-Protocol-Version: 1\r\nConnect-Timeout-Ms: 20000\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n"
                                    % (PATHS["list"], ct)).encode())
                            for i, ch in enumerate(chunks):
                                if i:
                                    time.sleep(0.3)
                                c.send(b"%x\r\n" % len(ch) + ch + b"\r\n")
                            c.send(b"0\r\n\r\n")
                            r = c.read_response()
                        finally:
                            c.close()
                        self.assertEqual(r.status, 200)
                        frames = r.frames()
                        self.assertEqual(frames[-1][0], 2)  # end-stream envelope
                        err = json.loads(frames[-1][1])["error"]
                        self.assertEqual(err["code"], "internal")
                        self.assertIn(WANT, err["message"])

    def test_rest_cannot_carry_two(self):
        port = self.ports["demo"]
        for body in (b'{"message":"a"}{"message":"b"}', b'{"message":"a"}\n{"message":"b"}\n',
                     b'[{"message":"a"},{"message":"b"}]'):
            with self.subTest(body=body):
                r = request(port, "POST", "/v1/echo", body, {"Content-Type": "application/json"})
                self.assertEqual(r.status, 400)
                self.assertEqual(json.loads(r.body)["code"], 3)

    def test_connection_still_serves(self):
        # The refusal ends the call, not the gateway: a new call works.
        port = self.ports["demo"]
        r = send_chunks(port, PATHS["echo"], "bin", [msg("echo", "bin", 1) * 2])
        self.assertEqual(status_of(r, "bin")[0], 13)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.close()
        r = send_chunks(port, PATHS["echo"], "bin", [msg("echo", "bin", 1)])
        self.assertEqual(status_of(r, "bin")[0], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
