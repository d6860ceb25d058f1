"""TF Serving's gRPC service names and method paths, and the type URL of its signature map.

They stay TF Serving's whatever our proto package is called. A leaf module (no
imports) so that the gRPC transport, the codecs and the emulator can all use it.
"""

from __future__ import annotations

__all__ = [
    "CLASSIFY",
    "GET_MODEL_METADATA",
    "GET_MODEL_STATUS",
    "HANDLE_RELOAD_CONFIG",
    "MODEL_SERVICE",
    "MULTI_INFERENCE",
    "PREDICT",
    "PREDICTION_SERVICE",
    "REGRESS",
    "SIGNATURE_DEF_MAP_TYPE_URL",
]

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"

PREDICT = f"/{PREDICTION_SERVICE}/Predict"
CLASSIFY = f"/{PREDICTION_SERVICE}/Classify"
REGRESS = f"/{PREDICTION_SERVICE}/Regress"
MULTI_INFERENCE = f"/{PREDICTION_SERVICE}/MultiInference"
GET_MODEL_METADATA = f"/{PREDICTION_SERVICE}/GetModelMetadata"
GET_MODEL_STATUS = f"/{MODEL_SERVICE}/GetModelStatus"
HANDLE_RELOAD_CONFIG = f"/{MODEL_SERVICE}/HandleReloadConfigRequest"

# The Any.type_url of GetModelMetadataResponse.metadata["signature_def"].
SIGNATURE_DEF_MAP_TYPE_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
