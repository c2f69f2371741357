"""The node's loopback HTTP API (JSON under /api/v1/) and Atom feeds (/feeds/); docs/http.md."""

from node.http.app import serve_http

__all__ = ["serve_http"]
