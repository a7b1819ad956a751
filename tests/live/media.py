"""What a party of a live call hears: a UDP socket on the party's own address
that the party's SDP names as its audio port (sipp._sdp), so Asterisk sends
the call's RTP here instead of to SIPp (which would echo it).  It keeps every
G.711 u-law packet with its arrival time; ``strength`` says how much of a
tone was in what arrived in a window."""

from __future__ import annotations

import re
import socket
import threading
import time

from tests.audio import RATE, strength, ulaw_decode

_DECODE = [ulaw_decode(b) for b in range(256)]


class RtpSink:
    def __init__(self, ip: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) > 12 and data[1] & 0x7F == 0:  # PCMU
                cc = data[0] & 0x0F
                self.packets.append((time.monotonic(), data[12 + 4 * cc:]))

    def samples(self, since: float, until: float) -> list[int]:
        return [_DECODE[b] for t, payload in list(self.packets) if since <= t < until
                for b in payload]

    def heard(self, freq: float, since: float, until: float) -> tuple[int, float]:
        """(packets that arrived in the window, the tone's strength in them)."""
        got = self.samples(since, until)
        return len(got) // 160, strength(got, RATE, freq)

    def talk(self, remote: tuple[str, int], seconds: float) -> None:
        """Send near-silence (G.711 u-law) to ``remote`` from this socket for
        ``seconds``, as a phone does all through a call: Asterisk's symmetric RTP
        then keeps sending here, and the call's audio frames flow (a whisper or a
        barge is mixed into the frames that pass; with none, nobody hears it)."""
        def run() -> None:
            seq, ts, t0 = 0, 0, time.monotonic()
            while not self._stop.is_set() and time.monotonic() - t0 < seconds:
                header = bytes([0x80, 0]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") \
                    + (0x5B5B0002).to_bytes(4, "big")
                try:
                    self.sock.sendto(header + b"\xff" * 160, remote)
                except OSError:
                    return
                seq, ts = (seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF
                time.sleep(max(0.0, t0 + (seq * 0.02) - time.monotonic()))
        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def sdp_media(message: str) -> tuple[str, int]:
    """(address, port) of the audio in a SIP message's SDP."""
    ip = re.search(r"^c=IN IP4 (\S+)", message, re.M)
    port = re.search(r"^m=audio (\d+)", message, re.M)
    assert ip and port, message[-600:]
    return ip.group(1), int(port.group(1))
