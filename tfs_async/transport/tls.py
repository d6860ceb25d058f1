"""TLS settings shared by both transports (certificates as PEM bytes or file paths).

>>> TLSConfig(ca_cert=b"-----BEGIN CERTIFICATE-----...").ca_pem()[:5]
b'-----'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PemSource", "TLSConfig"]

# PEM data as bytes, or a path to a PEM file.
PemSource = bytes | str | os.PathLike[str]


def _read_pem(source: PemSource | None) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


@dataclass(frozen=True)
class TLSConfig:
    """TLS for ``grpcs://`` and ``https://`` targets.

    Each certificate is PEM bytes or a path to a PEM file. ``ca_cert`` ``None``
    uses the system's roots; ``client_cert`` + ``client_key`` enable mutual TLS;
    ``server_name`` overrides the name checked against the server's certificate.
    """

    ca_cert: PemSource | None = None
    client_cert: PemSource | None = None
    client_key: PemSource | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("mutual TLS needs both client_cert and client_key")

    def ca_pem(self) -> bytes | None:
        """The CA certificates as PEM bytes (``None``: system roots)."""
        return _read_pem(self.ca_cert)

    def client_cert_pem(self) -> bytes | None:
        """The client certificate chain as PEM bytes."""
        return _read_pem(self.client_cert)

    def client_key_pem(self) -> bytes | None:
        """The client private key as PEM bytes."""
        return _read_pem(self.client_key)
