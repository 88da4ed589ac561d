"""A 1 GiB artifact downloads in bounded memory: peak RSS of the client stays under 150 MB.

The server is a separate process that streams a repeated block (so it holds little), and the
client runs in a fresh process that reports its own peak resident set size (VmHWM).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GiB = 1024**3
BLOCK = bytes(range(256)) * 4096  # 1 MiB
LIMIT_MB = 150

SERVER = textwrap.dedent(
    """
    import http.server, sys
    BLOCK = bytes(range(256)) * 4096
    TOTAL, DIGEST = int(sys.argv[1]), sys.argv[2]

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(TOTAL))
            self.send_header("X-C2D-SHA256", DIGEST)
            self.end_headers()
            for _ in range(TOTAL // len(BLOCK)):
                self.wfile.write(BLOCK)
        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), H)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)

CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from runner.client import Client
    url, folder, digest = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    with Client(url, "tok", 60) as client:
        got = client.download_artifact("j1", "big.bin", folder, expected_sha256=digest)
    # VmHWM is this process's own peak; ru_maxrss would also count the forking parent's.
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:"))
    print(got.bytes, peak_kb // 1024)
    """
)


@pytest.mark.slow
def test_one_gib_downloads_in_bounded_memory(tmp_path: Path) -> None:
    hasher = hashlib.sha256()
    for _ in range(GiB // len(BLOCK)):
        hasher.update(BLOCK)
    digest = hasher.hexdigest()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(GiB), digest], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, f"http://127.0.0.1:{port}", str(tmp_path), digest],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    size, peak_mb = (int(x) for x in done.stdout.split())
    assert size == GiB
    assert (tmp_path / "big.bin").stat().st_size == GiB
    assert peak_mb < LIMIT_MB, f"peak RSS {peak_mb} MB"
    print(f"1 GiB download: peak RSS {peak_mb} MB")
