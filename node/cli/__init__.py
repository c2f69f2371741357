"""The `percolab` command, one room: `commands.py` (arguments, the error boundary, every
command), `launch.py` (starting and attaching to nodes), `demo.py` (the three-node demo),
`backend.py` (a command talks to a running node's control socket, or opens the store itself).
"""

from node.cli.commands import main

__all__ = ["main"]
