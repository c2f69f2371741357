"""Percolab's network layer on py-libp2p 0.8.1 (trio).

* :mod:`p2p.identity` - the node's Ed25519 key file (``load_or_create_node_key``).
* :mod:`p2p.host` - ``open_p2p_node`` / ``P2PNode``: TCP + Noise only + Yamux, GossipSub.
* :mod:`p2p.gossip` - GossipSub settings, the validator bridge, paced publishing.
* :mod:`p2p.peers` - connect, "peer connected" events, bootstrap/remembered-peer redial.
* :mod:`p2p.hardening` - containment of py-libp2p crashes, strikes and temporary blocks.
* :mod:`p2p.framing` - length-prefixed frames with an explicit END for our own protocols.
* :mod:`p2p.limits` - every limit above as a named constant.

Knows libp2p; knows nothing of LMDB, the node or the TUI.
"""
