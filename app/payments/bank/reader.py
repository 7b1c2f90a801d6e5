"""A bank file's credits in chunks, a large file read by a child process while the import works on
the chunks it has: the import's two halves, reading XML and matching and writing, then run on
two CPUs at once.

Reading a 100,000-entry camt.053 takes 2.5 s of CPU, a quarter of its import; it needs no
database, so on Linux a forked child reads it (the parent's memory, the file included, is the
child's without a copy) and sends the credits in chunks of 5,000 through a pipe, while the
parent matches, settles and writes what it has received. The child never touches the parent's
database connection and ends with `os._exit` (as multiprocessing's forked children do), so no
finaliser of an inherited object runs in it. Smaller files (under 2 MB, a few thousand entries),
other platforms and OCR files (read whole by netsgiro anyway) are read in the importing process.

A problem the child meets (a bank file that is not well-formed halfway through) comes back as
the BankFileError it raised; the import then rolls back, as for any other error.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator
from dataclasses import fields
from multiprocessing.connection import Connection
from operator import attrgetter

from app.payments.bank.parsers import OCR, BankFileError, Credit, CreditStream

CHUNK = 5_000  # credits per chunk (and per message from the child)
FORK_ABOVE = 2 * 1024 * 1024  # bytes: smaller files are read in the importing process
_values = attrgetter(*(f.name for f in fields(Credit)))


def credit_chunks(stream: CreditStream, size: int, *, fork_above: int = FORK_ABOVE) -> Iterator[list[Credit]]:
    """The stream's credits in chunks of CHUNK; a file of `size` bytes above `fork_above` read by a
    child process where the platform forks (Linux)."""
    if size <= fork_above or stream.file_format == OCR or not sys.platform.startswith("linux"):
        yield from _chunked(iter(stream))
    else:
        yield from _from_child(stream)


def _chunked(credits: Iterator[Credit]) -> Iterator[list[Credit]]:
    chunk: list[Credit] = []
    for credit in credits:
        chunk.append(credit)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _from_child(stream: CreditStream) -> Iterator[list[Credit]]:
    """Read by a forked child; its counts (`ignored`) are copied back into `stream` at the end."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_send, args=(stream, sender), name="bank-file-reader", daemon=True)
    child.start()
    sender.close()
    try:
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                raise BankFileError("the process reading the file stopped unexpectedly") from None
            if kind == "credits":
                yield [Credit(*values) for values in payload]
            elif kind == "end":
                stream.ignored = payload
                return
            else:
                raise BankFileError(payload)
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _send(stream: CreditStream, sender: Connection) -> None:
    """The child: read the stream, send its credits in chunks (as tuples, cheap to pickle), then its
    counts, or the problem that stopped it."""
    try:
        for chunk in _chunked(iter(stream)):
            sender.send(("credits", [_values(credit) for credit in chunk]))
        sender.send(("end", stream.ignored))
    except BankFileError as exc:
        sender.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        sender.send(("error", f"the process reading the file failed: {exc!r}"))
    finally:
        sender.close()
