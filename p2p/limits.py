"""Every tunable limit of the p2p layer, in one place.

Values are chosen for Percolab's shape (a few dozen peers per node, small signed objects on
gossip, bulk catch-up on our own sync stream) and for py-libp2p 0.8.1's measured behaviour
(see docs/design.md, "Facts about py-libp2p 0.8.1").
"""

from __future__ import annotations

# --- GossipSub mesh -------------------------------------------------------------------------
# D=3 (not the spec's 6): every mesh edge carries each message once, so wire bytes grow with
# D. bench/gossip.py, 10 nodes at 5 msg/s: D=3 gives ~4.5x payload and p99 < 100 ms; D=6 gave
# ~13x. Gossip (IHAVE/IWANT) and our sync protocol repair what a thin mesh misses.
# These bounds only hold since hardening.py behaviours 6-7 (upstream's adaptive mode and
# per-heartbeat opportunistic grafting had grown every mesh to all of a node's connections).
# With them, bench/gossip.py --nodes 50 --rate 1: mesh sizes 2-5 (mean ~3.4), ~2.3 copies
# of each message sent per delivery, 3.5x payload on the wire, p99 258 ms (docs/gossip.md).
GOSSIP_DEGREE = 3  # D: target mesh peers per topic
GOSSIP_DEGREE_LOW = 2  # D_low: graft below this
GOSSIP_DEGREE_HIGH = 5  # D_high: prune above this
# py-libp2p's default is 120 s, far too slow for mesh repair. 1 s costs ~1.5-2.4 IHAVE RPCs per
# node per second at 50 nodes (~5-10% of loopback bytes at 1 msg/s).
HEARTBEAT_INTERVAL_S = 1
HEARTBEAT_INITIAL_DELAY_S = 0.1
GOSSIP_WINDOW = 3  # heartbeats of message ids advertised in IHAVE
GOSSIP_HISTORY = 5  # heartbeats of messages kept to answer IWANT
# Dlazy: the spec's 6 (and upstream's hard-coded value). Our nodes have few non-mesh peers
# (50-node bench: ~2.6 on average), so IHAVE stays ~5-10% of loopback bytes; kept for repair.
# With <= 6 non-mesh topic peers, every one of them (under PRUNE backoff too: hardening.py
# behaviour 13) gets IHAVE each heartbeat, so a peer outside the mesh learns a new object
# within ~1 heartbeat (docs/gossip.md, "Peers outside the mesh").
GOSSIP_LAZY_PEERS = 6  # Dlazy: non-mesh peers sent IHAVE per heartbeat (at least) ...
GOSSIP_FACTOR = 0.25  # ... or this share of the non-mesh topic peers, if more
FANOUT_TTL_S = 60
PRUNE_BACKOFF_S = 60
SEEN_TTL_S = 120  # dedup window of the seen-message cache (by content hash)
VALIDATION_CACHE_TTL_S = 300
VALIDATION_CACHE_SIZE = 10_000

# --- Muxer -----------------------------------------------------------------------------------
# Yamux window credit is sent once this many consumed bytes have accumulated on a stream
# (py-libp2p 0.8.1 sent one WINDOW_UPDATE per read: 2-4 frames per gossip RPC, ~17% of
# loopback bytes in bench/gossip.py at 20 nodes). Must stay <= half the 256 KiB initial
# window so a blocked sender always gets its credit back (p2p/muxer.py).
YAMUX_CREDIT_BATCH_BYTES = 64 * 1024

# --- Gossip message handling ----------------------------------------------------------------
MAX_GOSSIP_RPC_BYTES = 1024 * 1024  # one inbound pubsub RPC frame (objects are far smaller)
MAX_CONCURRENT_VALIDATORS = 16
VALIDATION_TIMEOUT_S = 30.0  # a slow ingest must not turn honest messages into "invalid"
# Relay spam limit: messages per second per topic accepted *for forwarding* from one remote
# peer (py-libp2p's default of 10/s also throttles the node's own publishes; ours are exempt).
RELAY_MSGS_PER_S_PER_PEER_TOPIC = 500.0
MAX_TOPICS_PER_PEER = 100

# --- Outbound pacing ------------------------------------------------------------------------
# py-libp2p's per-peer send queue holds 32 RPCs and drops silently when full. We enlarge it
# (room for relayed traffic) and make our own publish() wait until every peer queue is below
# the high-water mark, which gives publishers backpressure.
PEER_SEND_QUEUE_RPCS = 1024
PUBLISH_QUEUE_HIGH_WATER = 16
PUBLISH_PACE_POLL_S = 0.002  # how often a paced publish re-checks queue depths
PUBLISH_PACE_MAX_WAIT_S = 10.0  # give up waiting on a stuck peer queue after this long

# --- Connections ----------------------------------------------------------------------------
MAX_CONNECTIONS = 64  # total, inbound + outbound
MAX_CONNECTIONS_PER_PEER = 2
DIAL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 15.0  # whole connect() incl. security + muxer upgrade

# --- Redial (bootstrap + remembered peers) --------------------------------------------------
REDIAL_BACKOFF_INITIAL_S = 1.0
REDIAL_BACKOFF_MAX_S = 300.0
REDIAL_BACKOFF_FACTOR = 2.0
REDIAL_SCAN_INTERVAL_S = 1.0  # how often the redial loop looks for due peers
MAX_CONCURRENT_DIALS = 8

# --- Remembering peers that dialed us ------------------------------------------------------
# Their listen addresses arrive with identify, a few ms after the connection on loopback.
IDENTIFY_WAIT_S = 15.0
IDENTIFY_POLL_S = 0.1

# --- Down-scoring ---------------------------------------------------------------------------
INVALID_STRIKE_THRESHOLD = 10  # invalid objects/frames from one peer ...
INVALID_STRIKE_WINDOW_S = 60.0  # ... within this window => disconnect and block
PEER_BLOCK_DURATION_S = 600.0

# --- Events ---------------------------------------------------------------------------------
PEER_EVENT_BUFFER = 256  # queued "peer connected" events before new ones are dropped
