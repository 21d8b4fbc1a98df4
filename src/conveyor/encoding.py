"""Text files Conveyor reads (conveyor.toml, kustomizations, values files) are UTF-8.

One decoder, so that every reader refuses other encodings with the same
message, naming the first bad byte and its line, instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import ManifestError

_BOM = b"\xef\xbb\xbf"


def utf8_text(data: bytes) -> str:
    """``data`` as text (a leading UTF-8 byte-order mark dropped, as editors write one).

    Raises:
        ValueError: ``data`` is not UTF-8; the message names the byte and its line.
    """
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        start = error.start + (len(_BOM) if data.startswith(_BOM) else 0)
        line = data[:start].count(b"\n") + 1
        raise ValueError(f"is not UTF-8 text (byte 0x{data[start]:02x} on line {line})") from None


def manifest_text(data: bytes, shown: Path | str) -> str:
    """A manifest file's bytes as text, keeping a byte-order mark and CRLF as they are.

    Raises:
        ManifestError: the file is not UTF-8 (kustomize reads only UTF-8).
    """
    try:
        utf8_text(data)
    except ValueError as error:
        raise ManifestError(
            shown, str(error), hint="kustomize reads UTF-8 only: save the file with that encoding"
        ) from None
    return data.decode("utf-8")
