"""The image files a request to an image server carries, read from its body.

``/v1/predict`` takes a multipart upload (every file part is an image; a browser's form and
``curl -F image=@photo.jpg`` send one) or JSON (``{"image": base64}`` or ``{"images": [base64,
...]}``); ``/v2/models/{name}/infer`` takes the Open Inference Protocol's one ``BYTES`` input
whose data are base64 files. A body that is none of these is refused with a 422 saying what
to send. The multipart parser is python-multipart's streaming one, fed the whole body at once.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from driftloop.errors import RequestRefused
from driftloop.serve.routes import json_body

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Images one request may carry.
MAX_IMAGES = 64
SEND = (
    'send the image as a multipart upload (field "image"), or JSON {"image": "<base64>"} or '
    '{"images": ["<base64>", ...]}'
)


def predict_files(body: bytes, content_type: str | None) -> list[bytes]:
    """The image files of a ``/v1/predict`` body."""
    if content_type is not None and content_type.startswith("multipart/form-data"):
        return _limited(multipart_files(body, content_type))
    payload = json_body(body)
    if not isinstance(payload, dict) or not ({"image", "images"} & set(payload)):
        raise RequestRefused(SEND)
    if "images" in payload:
        given = payload["images"]
        if not isinstance(given, list):
            raise RequestRefused('"images" must be a list of base64 strings')
        return _limited([_base64(text, f"images[{n}]") for n, text in enumerate(given)])
    return [_base64(payload["image"], "image")]


def v2_files(body: bytes, content_type: str | None) -> list[bytes]:
    """The image files of a v2 request's one ``BYTES`` input (its data base64 strings)."""
    payload = json_body(body)
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestRefused('a v2 request has "inputs": one tensor {"name": "image", "datatype": "BYTES", ...}')
    tensor = inputs[0]
    if tensor.get("datatype") != "BYTES" or not isinstance(tensor.get("data"), list):
        raise RequestRefused(
            f'the input {tensor.get("name")!r} must be datatype "BYTES" with "data": a list of base64 image files'
        )
    return _limited([_base64(text, f"inputs[0].data[{n}]") for n, text in enumerate(tensor["data"])])


def multipart_files(body: bytes, content_type: str) -> list[bytes]:
    """The contents of the file parts (those with a filename) of a multipart body."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise RequestRefused("the multipart body names no boundary in its Content-Type")
    reader = _Parts()
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart says what was wrong with the form
        raise RequestRefused(f"the multipart form cannot be read: {exc}") from exc
    if not reader.files:
        raise RequestRefused("no image in the request: " + SEND)
    return reader.files


class _Parts:
    """Gathers the file parts' bytes as the parser calls back."""

    def __init__(self) -> None:
        self.files: list[bytes] = []
        self._data = bytearray()
        self._field, self._value = bytearray(), bytearray()
        self._is_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header,
            "on_part_data": lambda data, start, end: self._data.extend(data[start:end]),
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._data, self._is_file = bytearray(), False

    def _header(self) -> None:
        if self._field.lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._value))
            self._is_file = b"filename" in options
        self._field, self._value = bytearray(), bytearray()

    def _end(self) -> None:
        if self._is_file:
            self.files.append(bytes(self._data))


def _limited(files: list[bytes]) -> list[bytes]:
    if not files:
        raise RequestRefused("no image in the request: " + SEND)
    if len(files) > MAX_IMAGES:
        raise RequestRefused(f"{len(files)} images in one request; at most {MAX_IMAGES}", status=413)
    return files


def _base64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise RequestRefused(f"{where} must be a base64 string of an image file, not {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestRefused(f"{where} is not base64: {exc}") from exc
