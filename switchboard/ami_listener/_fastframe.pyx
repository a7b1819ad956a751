# cython: language_level=3, boundscheck=False, wraparound=False
"""The frame parser's fast path, in C (issue 15): the listener's hottest code.

``fields(frame, max_headers)`` gives the headers of a frame whose every line
is ``Key: value`` and ends in CRLF (the last line without it), with a valid
key, no repeated key, no stray CR and valid UTF-8: what Asterisk sends.  For
anything else it returns None and ``framing.parse_frame`` takes its general
path (the pure-Python parser, which counts malformed lines, replaces invalid
UTF-8 and keeps repeated headers).  Where it answers, it answers exactly what
the pure-Python parser does (tests/ami_listener/test_fastframe.py checks both
on the recordings and on generated frames); the pure path stays, and
SB_PURE_PYTHON=1 selects it.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr

# [A-Za-z0-9_-]: the characters of a header name (framing._LINE_RE)
cdef unsigned char KEY_CHAR[256]
for _c in bytearray(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"):
    KEY_CHAR[_c] = 1
# the header names seen, decoded once (bounded: a hostile peer cannot grow it)
cdef dict _NAMES = {}
DEF MAX_NAMES = 4096
DEF MAX_KEY = 64


def fields(bytes frame, Py_ssize_t max_headers):
    cdef const unsigned char* p = frame
    cdef Py_ssize_t n = len(frame)
    cdef Py_ssize_t pos = 0, end, stop, i, start, count = 0
    cdef const unsigned char* nl
    cdef dict out = {}
    cdef bytes raw_key
    while True:
        nl = <const unsigned char*>memchr(p + pos, 10, n - pos)  # LF
        if nl == NULL:
            end = n
            stop = n
        else:
            end = nl - p
            if end == pos or p[end - 1] != 13:  # a line must end in CRLF
                return None
            stop = end - 1
        i = pos
        while i < stop and KEY_CHAR[p[i]]:
            i += 1
        if i == pos or i - pos > MAX_KEY or i >= stop or p[i] != 58:  # ':'
            return None
        start = i + 1
        if start < stop and p[start] == 32:  # one optional space
            start += 1
        if stop > start and memchr(p + start, 13, stop - start) != NULL:  # a CR inside
            return None
        raw_key = p[pos:i]
        key = _NAMES.get(raw_key)
        if key is None:
            key = raw_key.decode("ascii")
            if len(_NAMES) < MAX_NAMES:
                _NAMES[raw_key] = key
        if key in out:  # a repeated header: the general path keeps every value
            return None
        try:
            out[key] = PyUnicode_DecodeUTF8(<const char*>p + start, stop - start, NULL)
        except UnicodeDecodeError:
            return None
        count += 1
        if count > max_headers:
            return None
        if nl == NULL:
            return out
        pos = end + 1
