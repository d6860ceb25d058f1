"""What both HTTP transports share that is not I/O: TF Serving's REST URLs and TLS contexts.

>>> model_path("http://h:8501", ModelSpec("a/b:c", label="can ary"), ":predict")
'http://h:8501/v1/models/a%2Fb%3Ac/labels/can%20ary:predict'
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path
from urllib.parse import quote

from tfs_async.transport.tls import TLSConfig
from tfs_async.types import ModelSpec

__all__ = ["model_path", "ssl_context_for"]


def model_path(base_url: str, model: ModelSpec, suffix: str = "") -> str:
    """TF Serving's REST URL for ``model``: ``/v1/models/{m}[/versions/{v}|/labels/{l}]{suffix}``.

    ``suffix`` is ``":predict"``, ``":classify"``, ``":regress"``, ``"/metadata"``
    or ``""`` (status). Names and labels are percent-encoded, ``/`` and ``:`` included.
    """
    path = f"{base_url}/v1/models/{quote(model.name, safe='')}"
    if model.version is not None:
        path += f"/versions/{model.version}"
    elif model.label is not None:
        path += f"/labels/{quote(model.label, safe='')}"
    return path + suffix


def ssl_context_for(tls: TLSConfig) -> ssl.SSLContext:
    """An SSLContext trusting ``tls.ca_cert`` (else the system) with the client certificate."""
    ca = tls.ca_pem()
    context = ssl.create_default_context(cadata=ca.decode("ascii") if ca is not None else None)
    cert, key = tls.client_cert_pem(), tls.client_key_pem()
    if cert is not None and key is not None:
        # The ssl module loads certificate chains only from files.
        with tempfile.TemporaryDirectory(prefix="tfs-async-tls-") as tmp:
            cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert_path.write_bytes(cert)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            context.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    return context
