"""What a member can do, one room: `api.py` (the methods behind the CLI, the control socket
and the HTTP API) over `queries.py` (views, pages, search).
"""

from node.service.api import Service, ServiceError

__all__ = ["Service", "ServiceError"]
