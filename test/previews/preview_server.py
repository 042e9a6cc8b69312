"""A tiny web server for the preview tests, run inside an environment (Python stdlib only).

GET /headers answers the request's path and headers as JSON (and sets a cookie of its own);
an upgrade to WebSocket on any path is an echo ("echo: <text>"); everything else is a file of
the directory given. Usage: python3 preview_server.py PORT DIRECTORY [BIND_ADDRESS]
"""
import base64
import hashlib
import http.server
import json
import socketserver
import struct
import sys
from functools import partial

GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            return self.echo()
        if self.path.startswith('/headers'):
            body = json.dumps({'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}}).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Set-Cookie', 'app_cookie=from-the-app; Path=/; Domain=example.com')
            self.end_headers()
            self.wfile.write(body)
            return
        return super().do_GET()

    def echo(self):
        key = self.headers['Sec-WebSocket-Key']
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header('Upgrade', 'websocket')
        self.send_header('Connection', 'Upgrade')
        self.send_header('Sec-WebSocket-Accept', accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack('>H', self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack('>Q', self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b'\0\0\0\0'
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b'\x88\x00')
                self.wfile.flush()
                return
            if opcode == 9:
                self.frame(0xA, data)
            elif opcode == 1:
                self.frame(1, b'echo: ' + data)
            elif opcode == 2:
                self.frame(2, data)

    def frame(self, opcode, data):
        n = len(data)
        if n < 126:
            header = bytes([0x80 | opcode, n])
        elif n < 65536:
            header = bytes([0x80 | opcode, 126]) + struct.pack('>H', n)
        else:
            header = bytes([0x80 | opcode, 127]) + struct.pack('>Q', n)
        self.wfile.write(header + data)
        self.wfile.flush()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == '__main__':
    port, directory = int(sys.argv[1]), sys.argv[2]
    bind = sys.argv[3] if len(sys.argv) > 3 else '0.0.0.0'
    Server((bind, port), partial(Handler, directory=directory)).serve_forever()
