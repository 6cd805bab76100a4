"""The encoder's error, shared by model resolution, ONNX export and loading so callers catch one."""

from __future__ import annotations


class EncoderError(RuntimeError):
    """The configured model cannot be found or loaded; the message names the setting."""
