"""Percolab's Textual TUI: attaches to a node over its control socket (docs/tui.md)."""

import logging

# Never let Python's last-resort handler print log records over the TUI's screen: records
# reach stderr only if the embedding program configured logging (to a file, as the CLI does).
logging.getLogger(__name__).addHandler(logging.NullHandler())
