"""Domain code and adapters of the image cleanup function.

Layout: pure domain modules (naming, pairing, retry_policy, imaging) know nothing of AWS;
adapters (storage, api_key, cleanup_api, publisher) sit at the edges; service wires them per pair.
"""
