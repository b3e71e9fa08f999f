"""Conformance suite for GET /v1/music/{organization_id}/generations."""

__version__ = "0.1.0"
