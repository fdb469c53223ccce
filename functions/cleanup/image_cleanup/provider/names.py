"""The providers' names (as PROVIDERS, the secret's JSON keys and the metrics' ``provider`` dimension use
them) and the variable that holds each one's endpoint. Imports nothing: the local stack reads it
before the function's environment is in place."""

from __future__ import annotations

PROVIDER_URL_VARIABLES = {
    "novita": "CLEANUP_API_URL",
    "clipdrop": "CLIPDROP_API_URL",
    "iopaint": "IOPAINT_API_URL",
}
KNOWN_PROVIDERS = tuple(PROVIDER_URL_VARIABLES)
